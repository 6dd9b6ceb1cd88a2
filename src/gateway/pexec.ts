import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { acceptsEventStream, queueableClientHeaders } from '../shared/headers.js';
import { frameBodyLimit } from '../shared/nats.js';
import { Invocation, UUID_PATTERN, type InvocationInput } from '../shared/protocol.js';
import { resolveAssetReferences } from './assets-api.js';
import type { GatewayContext } from './context.js';
import { HttpProblem, requestHeader, rawHeaderPairs, readBody } from './http.js';
import type { PendingRequest } from './requests.js';
import type { VersionView } from './registry.js';
import { answerStillRunning } from './answers.js';
import { ensureAdmission, enqueue } from './enqueue.js';
import { answerWhenReady } from './wait.js';

const DEFAULT_POLL_SECONDS = 60;
/** NVCF raises the default window for event streams, which run long by nature. */
const DEFAULT_SSE_POLL_SECONDS = 1200;

/** NVCF-POLL-SECONDS: an integer 1..3600, or the default; anything else is the caller's 400. */
export function pollSecondsOf(req: IncomingMessage): number {
  const text = requestHeader(req, 'nvcf-poll-seconds')?.trim();
  if (text === undefined || text === '') return wantsEventStream(req) ? DEFAULT_SSE_POLL_SECONDS : DEFAULT_POLL_SECONDS;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > 3600) {
    throw new HttpProblem(
      400,
      `NVCF-POLL-SECONDS must be a whole number of seconds from 1 to 3600, not "${text.slice(0, 32)}"`,
    );
  }
  return value;
}

function wantsEventStream(req: IncomingMessage): boolean {
  return acceptsEventStream(rawHeaderPairs(req));
}

/** The version a pexec call goes to: the one named, or a random ACTIVE one of the function. */
function chooseVersion(ctx: GatewayContext, functionId: string, versionId: string | undefined): VersionView {
  if (!UUID_PATTERN.test(functionId)) throw new HttpProblem(404, `function ${functionId.slice(0, 64)} not found`);
  if (versionId !== undefined) {
    const version = UUID_PATTERN.test(versionId) ? ctx.registry.version(versionId) : undefined;
    if (!version || version.functionId !== functionId.toLowerCase())
      throw new HttpProblem(404, `function ${functionId} has no version ${versionId.slice(0, 64)}`);
    return version;
  }
  const versions = ctx.registry.versionsOf(functionId);
  if (versions.length === 0)
    throw new HttpProblem(404, `function ${functionId} not found: no worker has registered it`);
  const active = versions.filter((v) => v.status === 'ACTIVE');
  // With nothing active the request still queues: a worker may come, or the caller gets NVCF's 504.
  const pool = active.length > 0 ? active : versions;
  return pool[Math.floor(Math.random() * pool.length)]!;
}

/** POST /v2/nvcf/pexec/functions/{functionId}[/versions/{versionId}] */
export async function invokeFunction(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
  functionId: string,
  versionId?: string,
): Promise<void> {
  const pollSeconds = pollSecondsOf(req);
  const version = chooseVersion(ctx, functionId, versionId);
  const assets = await resolveAssetReferences(ctx, requestHeader(req, 'nvcf-input-asset-references'));
  const body = await readBody(req, ctx.config.maxRequestBytes);
  const requestId = randomUUID();
  const log = ctx.log.child({ requestId, functionVersionId: version.functionVersionId });
  const fv = version.functionVersionId;

  await ensureAdmission(ctx, fv);

  const ttl = ctx.config.urlTtlMs;
  const inline = body.length <= frameBodyLimit(ctx.nc);
  if (!inline)
    await ctx.store.put(
      'bodies',
      requestId,
      Readable.from([body]),
      requestHeader(req, 'content-type') ?? 'application/octet-stream',
    );
  const now = Date.now();
  const replyTo = `nvcf.rs.${ctx.config.gatewayId}.${requestId}`;
  const invocation: Omit<InvocationInput, 'v'> = {
    requestId,
    functionId: version.functionId,
    functionVersionId: fv,
    ncaId: version.ncaId,
    subject: ctx.config.apiKey ? 'api-key' : 'anonymous',
    method: req.method!.toUpperCase(),
    path: version.inferenceUrl,
    headers: queueableClientHeaders(rawHeaderPairs(req)),
    ...(inline ? {} : { bodyUrl: ctx.signer.url({ method: 'GET', kind: 'bodies', id: requestId }, ttl) }),
    assets: assets.map((a) => ({
      assetId: a.assetId,
      contentType: a.contentType,
      url: ctx.signer.url({ method: 'GET', kind: 'assets', id: a.assetId }, ttl),
    })),
    requestTime: now,
    pollSeconds,
    largeResult: {
      uploadUrl: ctx.signer.url({ method: 'PUT', kind: 'results', id: requestId }, ttl),
      downloadUrl: ctx.signer.url({ method: 'GET', kind: 'results', id: requestId }, ttl),
    },
    replyTo,
  };
  const checked = Invocation.safeParse({ v: 1, ...invocation });
  if (!checked.success) {
    throw new HttpProblem(
      400,
      `the request cannot be queued: ${checked.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`,
    );
  }

  const record: PendingRequest = {
    requestId,
    functionId: version.functionId,
    functionVersionId: fv,
    gatewayId: ctx.config.gatewayId,
    replyTo,
    createdAt: now,
    lastSeenAt: now,
    pollSeconds,
  };
  await ctx.requests.create(record);
  try {
    await enqueue(ctx, invocation, inline ? body : new Uint8Array(0), log);
  } catch (err) {
    await ctx.requests.remove(requestId);
    throw err;
  }
  log.info({ pollSeconds, bytes: body.length, inline, assets: assets.length }, 'request queued');
  res.setHeader('NVCF-REQID', requestId);
  await answerWhenReady(ctx, record, pollSeconds, res);
}

/** GET /v2/nvcf/pexec/status/{requestId}: the same wait; after the result is out, 404. */
export async function requestStatus(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
): Promise<void> {
  const pollSeconds = pollSecondsOf(req);
  let entry;
  try {
    entry = UUID_PATTERN.test(requestId) ? await ctx.requests.get(requestId.toLowerCase()) : undefined;
  } catch (err) {
    // The record could not be read (NATS restarting): the request is not known to have failed.
    ctx.log.warn(
      { requestId, err: (err as Error).message },
      'request record unreadable; answering 202 so the caller polls again',
    );
    return answerStillRunning(res, requestId.toLowerCase());
  }
  if (!entry)
    throw new HttpProblem(
      404,
      `request ${requestId.slice(0, 64)} not found: unknown, cancelled, or its result was already delivered`,
    );
  await answerWhenReady(ctx, entry.record, pollSeconds, res);
}
