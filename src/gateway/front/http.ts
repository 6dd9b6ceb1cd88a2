import type { IncomingMessage, ServerResponse } from 'node:http';
import { NvcfError, PROBLEM_CONTENT_TYPE, titleOf, type RetryMeaning } from '../../shared/errors.js';
import type { GatewayContext } from '../context.js';

/**
 * An error a route throws to answer the client with problem+json. Like NVCF's invocation
 * service's own problems, the gateway's have no custom `type` (RFC 9457: absent means
 * about:blank), so a client tells them from the worker's and the container's, which have one.
 */
export class HttpProblem extends NvcfError {
  override name = 'HttpProblem';
  constructor(
    readonly status: number,
    detail: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(detail);
  }

  /** What the client may do: call again after a timeout, a full queue or an outage; not after a refusal. */
  get retry(): RetryMeaning {
    return RETRYABLE_STATUSES.has(this.status) ? 'retry' : 'give-up';
  }
}

const RETRYABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

export function problemBody(status: number, detail: string, requestId?: string): string {
  const title = titleOf(status);
  return JSON.stringify({
    title,
    status,
    detail,
    ...(requestId ? { requestId } : {}),
  });
}

export function sendProblem(
  res: ServerResponse,
  status: number,
  detail: string,
  headers: Record<string, string> = {},
  requestId?: string,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = problemBody(status, detail, requestId);
  res.writeHead(status, {
    ...headers,
    'content-type': PROBLEM_CONTENT_TYPE,
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function sendJson(
  res: ServerResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** The whole request body, or a 413 problem as soon as it passes `limit` bytes. */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit)
    throw new HttpProblem(413, `the request body is ${declared} bytes; this gateway accepts at most ${limit}`);
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit)
      throw new HttpProblem(413, `the request body is larger than ${limit} bytes, the most this gateway accepts`);
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts, size);
}

export async function readJson(req: IncomingMessage, limit = 64 * 1024): Promise<unknown> {
  const body = await readBody(req, limit);
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpProblem(400, 'the request body is not valid JSON');
  }
}

/** The request's headers as name/value pairs, names as the client spelled them. */
export function rawHeaderPairs(req: IncomingMessage): [string, string][] {
  const pairs: [string, string][] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) pairs.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
  return pairs;
}

export function requestHeader(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(',') : value;
}

/** One route of the gateway's API: the method, the path pattern (its groups are the handler's params) and the handler. */
export interface Route {
  method: string;
  pattern: RegExp;
  handler: (
    ctx: GatewayContext,
    req: IncomingMessage,
    res: ServerResponse,
    params: string[],
    query: URLSearchParams,
  ) => Promise<void> | void;
  /** Signed storage URLs and the console carry their own authority; everything else needs the API key when one is set. */
  open?: boolean;
}
