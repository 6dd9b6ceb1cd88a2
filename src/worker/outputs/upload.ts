import { request } from 'undici';
import { NvcfError, SidecarError, type RetryMeaning } from '../../shared/errors.js';
import { ZipWriter } from '../../zip/writer.js';
import { observePhase, type WorkerMetrics } from '../metrics.js';

/**
 * One try at uploading a large result: a zip written while it is PUT to the request's upload
 * URL. Once anything goes wrong (the storage side, a file that broke mid-entry, the request
 * ending) the try is broken for good; a new one rebuilds the archive from the start.
 */
export class UploadAttempt {
  readonly zip = new ZipWriter();
  readonly done: Promise<void>;
  private failure: Error | undefined;
  private readonly controller = new AbortController();

  constructor(url: string, signal: AbortSignal, metrics?: WorkerMetrics) {
    const stop = () => this.abort(new UploadBroken('the request ended', 'give-up'));
    signal.addEventListener('abort', stop, { once: true });
    // A listener added to a signal that has already fired is never called.
    if (signal.aborted) queueMicrotask(stop);
    const startedAt = performance.now();
    this.done = request(url, {
      method: 'PUT',
      body: this.zip.output,
      headers: { 'content-type': 'application/zip' },
      signal: this.controller.signal,
    })
      .then(async (answer) => {
        await answer.body.dump();
        if (answer.statusCode < 200 || answer.statusCode > 299) throw new UploadRejected(answer.statusCode);
        // A store that says yes before it read the archive to its end holds a truncated one.
        if (!this.zip.output.readableEnded)
          throw new UploadBroken(`storage answered ${answer.statusCode} before it had the whole archive`, 'retry');
        observePhase(metrics, 'result_upload', startedAt, this.zip.size);
      })
      .catch((err: Error) => {
        this.failure ??= err;
        // Nothing reads the archive any more: entries still waiting to be written must fail, not wait.
        this.zip.destroy(err);
        throw err;
      })
      .finally(() => signal.removeEventListener('abort', stop));
    this.done.catch(() => undefined);
  }

  /** Whether this try can no longer produce a whole archive. */
  get broken(): boolean {
    return this.failure !== undefined;
  }

  /** Why the try broke: the storage side's answer when there is one, else the first error seen. */
  cause(fallback: unknown): unknown {
    return this.failure ?? fallback;
  }

  abort(reason: Error): void {
    this.failure ??= reason;
    this.zip.destroy(reason);
    this.controller.abort(reason);
  }
}

/** Storage refused the upload: a 5xx may pass on another try, a 4xx will not. */
class UploadRejected extends NvcfError {
  override name = 'UploadRejected';
  constructor(readonly status: number) {
    super(`storage answered ${status}`);
  }

  get retry(): RetryMeaning {
    return this.status >= 500 ? 'retry' : 'give-up';
  }
}

/**
 * A try that cannot produce a whole archive for a reason of ours, not the store's: the request
 * ended or the result was abandoned (give up), or a file changed after it was shipped or the
 * store answered before reading everything (a new try, rebuilt from disk, may work).
 */
export class UploadBroken extends NvcfError {
  override name = 'UploadBroken';
  constructor(
    message: string,
    readonly retry: RetryMeaning,
  ) {
    super(message);
  }
}

/** Storage errors (5xx) and broken connections are worth another try; a 4xx or a refusal of ours is not. */
export function isRetryable(err: unknown): boolean {
  // A request's own failure (deadline, cancel, a refusal of ours) ends the upload, whatever it means for the request.
  if (err instanceof SidecarError) return false;
  if (err instanceof NvcfError) return err.retry === 'retry';
  return true;
}
