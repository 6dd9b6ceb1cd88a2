import type { Readable } from 'node:stream';
import { Pool, request, type Dispatcher } from 'undici';
import { SidecarError, errorCode } from '../../shared/errors.js';
import type { HeaderList } from '../../shared/protocol.js';
import type { RequestAbort } from '../cancels.js';

const STALL_CHECK_MS = 1_000;
const STALL_CHECKS = 3;

export interface ContainerCall {
  method: string;
  path: string;
  headers: HeaderList;
  /** Inline bytes, or a URL the body streams from (for bodies too large for one message). */
  body: Uint8Array | { url: string };
  signal: AbortSignal;
  /** The same abort, as the cheaper emitter undici can listen to (cancels.ts). */
  abortEvents?: RequestAbort['forUndici'];
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
  private pool: Pool;
  private readonly watchdog: NodeJS.Timeout;
  private stalledChecks = 0;

  constructor(
    private readonly origin: string,
    private readonly connections: number,
    private readonly onStall: (queued: number) => void = () => undefined,
  ) {
    this.pool = this.newPool();
    this.watchdog = setInterval(() => this.checkForStall(), STALL_CHECK_MS);
    this.watchdog.unref();
  }

  private newPool(): Pool {
    return new Pool(this.origin, {
      connections: this.connections,
      headersTimeout: 0,
      bodyTimeout: 0,
      keepAliveTimeout: 30_000,
    });
  }

  /**
   * Requests waiting in the pool while it runs nothing and holds no connection: a stalled pool,
   * which our fuzzing has driven undici into (root cause not yet known). Rather than let the
   * worker serve nothing until the deadlines, the waiting calls fail (and are answered with a
   * connection problem) and a fresh pool takes over.
   */
  private checkForStall(): void {
    const { queued, running, connected } = this.pool.stats;
    this.stalledChecks = queued > 0 && running === 0 && connected === 0 ? this.stalledChecks + 1 : 0;
    if (this.stalledChecks < STALL_CHECKS) return;
    this.stalledChecks = 0;
    this.onStall(queued);
    const stalled = this.pool;
    this.pool = this.newPool();
    void stalled
      .destroy(
        new SidecarError('INFERENCE_CONNECTION', 'the connection pool to the container stalled and was replaced'),
      )
      .catch(() => undefined);
  }

  async call(call: ContainerCall): Promise<ContainerAnswer> {
    const body = call.body instanceof Uint8Array ? call.body : await openRequestBody(call.body.url, call.signal);
    const options: Dispatcher.RequestOptions = {
      path: call.path,
      method: call.method,
      headers: flatten(call.headers),
      body: body instanceof Uint8Array && body.length === 0 ? null : body,
      signal: call.abortEvents ?? call.signal,
    };
    try {
      const answer = await this.pool.request(options);
      return { status: answer.statusCode, headers: answer.headers, body: answer.body };
    } catch (err) {
      if (call.signal.aborted) throw call.signal.reason;
      throw new SidecarError('INFERENCE_CONNECTION', errorCode(err), { cause: err });
    }
  }

  async destroy(): Promise<void> {
    clearInterval(this.watchdog);
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
    throw new SidecarError('REQUEST_BODY_FAILED', `fetching the request body failed: ${errorCode(err)}`, {
      cause: err,
    });
  }
}

/**
 * Name, value, name, value…: what undici takes. A loop, not Array.prototype.flat, which cost
 * about 4 µs for a request's twenty-odd headers, a tenth of the worker's own work per request.
 */
function flatten(headers: HeaderList): string[] {
  const flat: string[] = [];
  for (const [name, value] of headers) flat.push(name, value);
  return flat;
}
