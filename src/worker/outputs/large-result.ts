import { lstat, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { SidecarError } from '../../shared/errors.js';
import { digest, openOutput, REMOVED_BEFORE_READ, type Opened } from './file-rules.js';
import type { OutputFile, SkippedFile } from '../../shared/protocol.js';
import { isRetryable, UploadAttempt, UploadBroken } from './upload.js';
import type { WorkerMetrics } from '../metrics.js';
import { addOutputFile, addResponseBody, type BodySource, type Shipped } from './zip-entries.js';

/** Retries of a failed upload (NVCF's worker tries three more times), starting at 100 ms. */
const UPLOAD_RETRIES = 3;
const FIRST_RETRY_DELAY_MS = 100;
/** Files opened, checked and read at once: hides the file system's latency when there are thousands. */
const FILES_AT_ONCE = 8;
export interface Manifest {
  files: OutputFile[];
  skipped: SkippedFile[];
}

export interface LargeResultOptions {
  requestId: string;
  uploadUrl: string;
  /** The request's output directory; output names are paths relative to it. */
  dir: string;
  /** Its real path: every file shipped must really lie under it. */
  realRoot: string;
  onShipped: (file: OutputFile) => void;
  /** Shipped files that changed or went away before the response arrived: the zip is sent again. */
  onChanged?: (names: string[]) => void;
  signal: AbortSignal;
  /** Where the upload's time and size are recorded. */
  metrics?: WorkerMetrics;
}

/**
 * One large result: a zip of `<requestId>.response` (the container's body) and the finished
 * output files, streamed to the request's upload URL. Files are added as soon as they are final,
 * so the upload runs while the container still works, and a few are opened and read at once, so
 * 100,000 tiny files do not wait on each other. Every entry can be read again from disk or
 * memory, so a failed upload is rebuilt from the start; memory stays flat whatever the sizes.
 */
export class LargeResult {
  /** Every output name seen, in order: what was shipped of it, or why not ('pending' while it ships). */
  private readonly files = new Map<string, Shipped | 'pending' | 'skipped'>();
  private readonly skipped: SkippedFile[] = [];
  /** Names waiting to be shipped, taken from `next` on by up to FILES_AT_ONCE runners. */
  private readonly waiting: string[] = [];
  private next = 0;
  private runners = 0;
  /** Names added by the watcher that are put back if they are still empty when opened. */
  private readonly early = new Set<string>();
  private whenIdle: (() => void) | undefined;
  private attempt: UploadAttempt | undefined;
  private abandoned = false;

  constructor(private readonly options: LargeResultOptions) {}

  /**
   * Ships a finished output file; a name seen before is ignored (a changed file is caught at the
   * end). A file `seenEarly` (by the watcher, while the container works) that is still empty
   * when its turn comes is most likely being written under its final name: it is put back, to
   * be shipped on its next event or by the final sweep, rather than shipped empty now and force
   * a rebuild of the whole zip at the end.
   */
  addOutput(name: string, seenEarly = false): void {
    if (!seenEarly) this.early.delete(name);
    if (this.files.has(name)) return;
    if (seenEarly) this.early.add(name);
    this.files.set(name, 'pending');
    this.attempt ??= this.startAttempt();
    this.waiting.push(name);
    if (this.runners < FILES_AT_ONCE) void this.run();
  }

  /** Ships waiting files one after another; a few of these run at once. */
  private async run(): Promise<void> {
    this.runners++;
    while (this.next < this.waiting.length) {
      const name = this.waiting[this.next++]!;
      if (this.next === this.waiting.length) this.waiting.length = this.next = 0;
      await this.shipFirst(name, this.attempt!).catch((err: Error) => this.reject(name, `unreadable: ${err.message}`));
    }
    if (--this.runners === 0) this.whenIdle?.();
  }

  /** Whether this output name was seen already (shipped, being shipped, or skipped). */
  has(name: string): boolean {
    return this.files.has(name);
  }

  skip(file: SkippedFile): void {
    if (this.files.has(file.name)) return;
    this.files.set(file.name, 'skipped');
    this.skipped.push(file);
  }

  /** Adds the response body, closes the zip and waits for the upload to be accepted. */
  async finish(body: BodySource): Promise<Manifest> {
    const { signal } = this.options;
    let attempt = (this.attempt ??= this.startAttempt());
    if (this.runners > 0) await new Promise<void>((resolve) => (this.whenIdle = resolve));
    await this.reshipChanged(attempt);
    // Broken while the container ran (a file changed, a store hiccup): starting over is not a retry.
    if (attempt.broken && !signal.aborted) {
      const cause = attempt.cause(undefined);
      if (!isRetryable(cause)) throw uploadFailed(cause);
      attempt = await this.startOver();
    }
    for (let retry = 0; ; retry++) {
      try {
        await addResponseBody(attempt, this.options.requestId, body);
        await attempt.zip.end();
        await attempt.done;
        return this.manifest();
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        const cause = attempt.cause(err);
        if (!isRetryable(cause) || retry >= UPLOAD_RETRIES) throw uploadFailed(cause);
        await sleep(FIRST_RETRY_DELAY_MS * 2 ** retry, undefined, { signal }).catch(() => undefined);
        if (signal.aborted) throw signal.reason;
        attempt = await this.startOver();
      }
    }
  }

  /** A new attempt with every shipped file added again; a rebuild that breaks leaves it broken, for the caller to retry. */
  private async startOver(): Promise<UploadAttempt> {
    const attempt = (this.attempt = this.startAttempt());
    await this.rebuild(attempt);
    return attempt;
  }

  /** Stops the upload; the storage side never sees a complete object. */
  abandon(): void {
    this.abandoned = true;
    this.attempt?.abort(new UploadBroken('the large result was abandoned', 'give-up'));
  }

  private manifest(): Manifest {
    const files: OutputFile[] = [];
    for (const [name, shipped] of this.files)
      if (typeof shipped === 'object') files.push({ name, size: shipped.size, sha256: shipped.sha256 });
    return { files, skipped: this.skipped };
  }

  private async shipFirst(name: string, attempt: UploadAttempt): Promise<void> {
    if (this.abandoned) return;
    const seenEarly = this.early.delete(name);
    const path = join(this.options.dir, name);
    const opened = await openOutput(this.options.realRoot, path);
    if ('skipped' in opened) {
      // Gone since the watcher saw it (renamed, or replaced): the final sweep decides about the name.
      if (seenEarly && opened.skipped === REMOVED_BEFORE_READ) this.files.delete(name);
      else this.reject(name, opened.skipped);
      return;
    }
    let shipped: Shipped | undefined;
    try {
      // Put back at once, before anything else can run: a sweep adding the name meanwhile must not find it pending.
      if (seenEarly && opened.size === 0) return void this.files.delete(name);
      shipped = await addOutputFile(attempt, name, opened).catch((err: Error) =>
        this.reject(name, `unreadable: ${err.message}`),
      );
    } finally {
      await opened.handle.close().catch(() => undefined);
    }
    if (shipped === undefined) return;
    this.files.set(name, shipped);
    this.options.onShipped({ name, size: shipped.size, sha256: shipped.sha256 });
  }

  /**
   * A file written under its final name (not via `.partial`) can be shipped while still growing.
   * Any shipped file whose size or mtime moved since is hashed again, and the zip is rebuilt from
   * disk, so the result always holds the files as they were when the response arrived.
   */
  private async reshipChanged(attempt: UploadAttempt): Promise<void> {
    const changed: string[] = [];
    await this.eachShipped(async (name, before) => {
      const now = await lstat(join(this.options.dir, name)).catch(() => undefined);
      if (now && now.size === before.size && now.mtimeMs === before.mtimeMs) return;
      changed.push(name);
      const shipped = await this.withOutput(name, ({ handle, mtimeMs }) =>
        digest(handle).then(
          (hashed) => ({ mtimeMs, ...hashed }),
          (err: Error) => this.reject(name, `unreadable: ${err.message}`),
        ),
      );
      if (shipped) this.files.set(name, shipped);
    });
    if (changed.length === 0) return;
    this.options.onChanged?.(changed);
    attempt.abort(new UploadBroken(`${changed.length} output file(s) changed after they were shipped`, 'retry'));
  }

  /** Adds every shipped file to a new attempt's zip, as each was recorded. */
  private async rebuild(attempt: UploadAttempt): Promise<void> {
    await this.eachShipped(async (name, recorded) => {
      const opened = await openOutput(this.options.realRoot, join(this.options.dir, name));
      if ('skipped' in opened)
        throw new UploadBroken(`${name} changed since it was first shipped: ${opened.skipped}`, 'retry');
      try {
        if (opened.size !== recorded.size)
          throw new UploadBroken(`${name} changed since it was first shipped: now ${opened.size} bytes`, 'retry');
        const again = await addOutputFile(attempt, name, opened);
        if (again.sha256 !== recorded.sha256)
          throw new UploadBroken(`${name} changed since it was first shipped`, 'retry');
      } finally {
        await opened.handle.close().catch(() => undefined);
      }
    }).catch((err: Error) => attempt.abort(err));
  }

  /** Runs `visit` for every shipped file, a few at once; the first failure stops it. */
  private async eachShipped(visit: (name: string, shipped: Shipped) => Promise<void>): Promise<void> {
    const running = new Set<Promise<void>>();
    for (const [name, shipped] of [...this.files]) {
      if (typeof shipped !== 'object') continue;
      const work = visit(name, shipped);
      running.add(work);
      void work.finally(() => running.delete(work)).catch(() => undefined);
      if (running.size >= FILES_AT_ONCE) await Promise.race(running);
    }
    await Promise.all(running);
  }

  /** Opens an output under the safety rules and uses it, or records why it is skipped (and gives undefined). */
  private async withOutput<T>(
    name: string,
    use: (opened: Extract<Opened, { handle: FileHandle }>) => Promise<T>,
  ): Promise<T | undefined> {
    const opened = await openOutput(this.options.realRoot, join(this.options.dir, name));
    if ('skipped' in opened) return this.reject(name, opened.skipped);
    try {
      return await use(opened);
    } finally {
      await opened.handle.close().catch(() => undefined);
    }
  }

  private reject(name: string, reason: string): undefined {
    this.files.set(name, 'skipped');
    this.skipped.push({ name, reason });
    return undefined;
  }

  private startAttempt(): UploadAttempt {
    return new UploadAttempt(this.options.uploadUrl, this.options.signal, this.options.metrics);
  }
}

function uploadFailed(cause: unknown): SidecarError {
  return new SidecarError('LARGE_RESULT_FAILED', `uploading the large result failed: ${(cause as Error).message}`, {
    cause,
  });
}
