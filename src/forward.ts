import type { Readable } from 'node:stream';
import { Pool, request, type Dispatcher } from 'undici';
import { SidecarError, errorCode } from './errors.js';
import type { HeaderList } from './protocol.js';

export interface ContainerCall {
  method: string;
  path: string;
  headers: HeaderList;
  /** Inline bytes, or a URL the body streams from (for bodies too large for one message). */
  body: Uint8Array | { url: string };
  signal: AbortSignal;
}

export interface ContainerAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable;
}

/**
 * The HTTP client for the inference container: one keep-alive pool sized to the worker's
 * concurrency. No header or body timeout: NVCF bounds a call only by cancellation and the
 * request deadline, both of which arrive through the abort signal.
 */
export class ContainerClient {
  private readonly pool: Pool;

  constructor(origin: string, connections: number) {
    this.pool = new Pool(origin, { connections, headersTimeout: 0, bodyTimeout: 0, keepAliveTimeout: 30_000 });
  }

  async call(call: ContainerCall): Promise<ContainerAnswer> {
    const body = call.body instanceof Uint8Array ? call.body : await openRequestBody(call.body.url, call.signal);
    const options: Dispatcher.RequestOptions = {
      path: call.path,
      method: call.method as Dispatcher.HttpMethod,
      headers: call.headers.flat(),
      body: body instanceof Uint8Array && body.length === 0 ? null : body,
      signal: call.signal,
    };
    try {
      const answer = await this.pool.request(options);
      return { status: answer.statusCode, headers: answer.headers, body: answer.body };
    } catch (err) {
      if (call.signal.aborted) throw call.signal.reason;
      throw new SidecarError('INFERENCE_CONNECTION', errorCode(err), { cause: err });
    }
  }

  async close(): Promise<void> {
    await this.pool.close();
  }

  async destroy(): Promise<void> {
    await this.pool.destroy();
  }
}


/** Streams a large request body from where the gateway parked it. */
async function openRequestBody(url: string, signal: AbortSignal): Promise<Readable> {
  try {
    const source = await request(url, { signal });
    if (source.statusCode !== 200) {
      source.body.resume();
      throw new SidecarError('REQUEST_BODY_FAILED', `fetching the request body answered ${source.statusCode}`);
    }
    return source.body;
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    if (err instanceof SidecarError) throw err;
    throw new SidecarError('REQUEST_BODY_FAILED', `fetching the request body failed: ${errorCode(err)}`, { cause: err });
  }
}
