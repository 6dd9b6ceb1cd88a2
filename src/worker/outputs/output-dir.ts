import { createWriteStream } from 'node:fs';
import { rm, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { SidecarError, errorCode } from '../../shared/errors.js';
import { LargeResult, type Manifest } from './large-result.js';
import type { Logger } from '../../shared/log.js';
import { PROGRESS_FILE, classify, entryName, scanOutputs } from './file-rules.js';
import { ProgressReporter } from './progress-file.js';
import type { OutputFile } from '../../shared/protocol.js';
import type { ResponsePublisher, ResultManifest } from '../request/publisher.js';
import { TreeWatcher } from './tree-watch.js';
import { OutputDirCalls } from './dir-calls.js';
import type { WorkerMetrics } from '../metrics.js';

/** Announcements of finished files are batched for this long, and at most this many per message. */
const ANNOUNCE_DELAY_MS = 10;
const ANNOUNCE_BATCH = 200;
/**
 * The watch starts this late: most requests are over sooner and write nothing, and then never
 * pay for a watch. What is written meanwhile the watch's first look finds, and the final sweep
 * (`settle`) finds every finished file whatever the watch saw.
 */
const WATCH_DELAY_MS = 20;
/** Room for the manifest in the final message; longer lists are cut and counted. */
const MANIFEST_BUDGET_BYTES = 256 * 1024;

export interface RequestOutputsOptions {
  requestId: string;
  /** BASE_RESPONSE_DIR as configured; the request's directory is `<baseDir>/<requestId>`. */
  baseDir: string;
  /** The real path of BASE_RESPONSE_DIR, resolved once: the directory must lie directly inside it. */
  realBase: string;
  /** Where the large result goes and where the caller fetches it; absent when the request has none. */
  largeResult: { uploadUrl: string; downloadUrl: string } | undefined;
  /** Compatibility mode: progress, finished files and large results. Pass-through only gets the directory. */
  watch: boolean;
  /** Where a body over the inline limit is parked while the large result is built. */
  spoolPath: string;
  publisher: ResponsePublisher;
  log: Logger;
  signal: AbortSignal;
  metrics?: WorkerMetrics;
}

/** Where the caller finds a large result, and what the zip holds. */
export interface LargeAnswer {
  location: string;
  manifest: ResultManifest;
}

/**
 * The output side of one request, from start to end, in one place: the directory is created
 * (`open`), watched for progress reports and finished files, which are announced and shipped as
 * they appear; at the end the request either settles it (`settle`, then `shipLarge` when the
 * answer is a large result) or abandons it (an error, a stream, the request ended), and `remove`
 * deletes it. Each request watches its own directory (native events, no polling), so the cost of
 * watching does not grow with the number of requests in flight, and no request can see another's.
 */
export class RequestOutputs {
  readonly dir: string;
  private readonly progress: ProgressReporter;
  private large: LargeResult | undefined;
  private readonly announce: OutputFile[] = [];
  private announceTimer: NodeJS.Timeout | undefined;
  private announcing: Promise<void> = Promise.resolve();
  /** Every shipped file's real path is checked against this: a directory swapped for a link leads nowhere. */
  private readonly realRoot: string;
  private watcher: TreeWatcher | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private shipped = false;
  /** Set once the directory is gone (see `settle`): there is nothing left to remove. */
  private removed = false;
  /** The watch saw an entry: a directory is given back only when listing it is cheap (dir-calls.ts). */
  private sawEntries = false;
  private readonly calls: OutputDirCalls;

  private constructor(private readonly options: RequestOutputsOptions) {
    // The request id is a validated UUID, so these joins cannot leave the base directory.
    this.dir = join(options.baseDir, options.requestId);
    this.realRoot = join(options.realBase, options.requestId);
    this.calls = new OutputDirCalls(this.dir);
    const send = (percent: number, headers: [string, string][], body: Buffer) =>
      options.publisher.progress(percent, headers, body);
    this.progress = new ProgressReporter(
      join(this.dir, PROGRESS_FILE),
      () => this.realRoot,
      options.requestId,
      send,
      options.log,
    );
  }

  /** Creates the directory and, in compatibility mode, watches it: in place before the container is called. */
  static async open(options: RequestOutputsOptions): Promise<RequestOutputs> {
    const outputs = new RequestOutputs(options);
    try {
      await outputs.calls.create();
    } catch (err) {
      throw new SidecarError('PREPARE_FAILED', `could not create the output directory: ${errorCode(err)}`, {
        cause: err,
      });
    }
    if (options.watch) outputs.watchTimer = setTimeout(() => outputs.startWatching(), WATCH_DELAY_MS);
    else outputs.closed = true;
    return outputs;
  }

  private startWatching(): void {
    this.watchTimer = undefined;
    if (this.closed) return;
    this.watcher = new TreeWatcher(
      (path) => this.seen(path),
      (path) => this.large?.has(entryName(this.dir, path) ?? '') ?? false,
    );
    this.watcher.watchTree(this.dir);
  }

  private stopWatching(): void {
    clearTimeout(this.watchTimer);
    this.watchTimer = undefined;
    this.watcher?.close();
    this.watcher = undefined;
  }

  private seen(path: string): void {
    this.sawEntries = true;
    if (this.closed) return;
    const name = entryName(this.dir, path);
    if (name === undefined) return; // reported by the final scan
    const kind = classify(name);
    if (kind === 'progress') this.progress.changed();
    // Shipped once per name; a file that keeps changing after that is shipped again at the end.
    else if (kind === 'final' && this.options.largeResult) this.largeResult().addOutput(name, true);
  }

  /**
   * Stops progress and announcements (nothing of either is sent after this resolves) and sweeps
   * the directory for finished files the events have not delivered yet. Returns true when there
   * are output files, which makes the result a large one.
   */
  async settle(): Promise<boolean> {
    this.closed = true;
    this.stopWatching();
    await this.progress.close();
    // Most requests leave the directory empty: it is then given back at once (dir-calls.ts).
    // A directory with anything in it is scanned.
    if (!this.large && !this.sawEntries && this.calls.recycleIfEmpty()) {
      this.removed = true;
      return false;
    }
    const scan = await scanOutputs(this.dir);
    if (scan.finals.length === 0 && this.large) {
      // Every name the watcher saw is gone (a progress report written to a temporary name and
      // renamed to `progress`, say). What the directory holds when the response arrives decides,
      // as with NVCF's worker, not what passed through it: no output files, no zip.
      this.large.abandon();
      this.large = undefined;
      this.announce.length = 0;
      clearTimeout(this.announceTimer);
      this.announceTimer = undefined;
    }
    if (scan.finals.length > 0) this.slot(`the container left ${scan.finals.length} output file(s)`);
    for (const { name } of scan.finals) this.largeResult().addOutput(name);
    for (const skipped of scan.skipped) {
      this.options.log.warn({ file: skipped.name, reason: skipped.reason }, 'output file not shipped');
      this.large?.skip(skipped);
    }
    return this.large !== undefined;
  }

  /**
   * Completes the large result with the response body (read so far, and the `rest` still unread
   * when it is over the inline limit) and resolves once storage has it all.
   */
  async shipLarge(prefix: Buffer[], rest: AsyncIterator<Buffer> | undefined): Promise<LargeAnswer> {
    const slot = this.slot(rest ? 'the response is over the inline limit' : 'the result has output files');
    let manifest: Manifest;
    if (rest) {
      const { spoolPath } = this.options;
      try {
        await spool(prefix, rest, spoolPath);
        manifest = await this.largeResult().finish({ file: spoolPath });
      } finally {
        await rm(spoolPath, { force: true });
      }
    } else {
      manifest = await this.largeResult().finish({ bytes: Buffer.concat(prefix) });
    }
    this.shipped = true;
    this.flushAnnouncements();
    await this.announcing;
    return { location: slot.downloadUrl, manifest: summarize(manifest) };
  }

  /** The answer will not be a large result (an error, a stream, or the request ended): drop the upload. */
  abandon(): void {
    if (this.shipped) return;
    this.closed = true;
    this.stopWatching();
    clearTimeout(this.announceTimer);
    this.announce.length = 0;
    this.large?.abandon();
    void this.progress.close();
  }

  /**
   * The end of the request: anything still running stops, and the directory goes. Most are
   * empty and are given back; anything else takes the rmdir, then the recursive removal (which
   * removes links, never what they point to).
   */
  async remove(): Promise<void> {
    this.abandon();
    if (this.removed) return;
    // Pass-through requests are not watched: nothing bounds what they left, so no listing here.
    if (this.options.watch && !this.sawEntries && this.calls.recycleIfEmpty()) return;
    await rmdir(this.dir).catch(() => rm(this.dir, { recursive: true, force: true }));
  }

  /** The one rule for large results: without a slot from the caller there is nowhere to put one. */
  private slot(why: string): { uploadUrl: string; downloadUrl: string } {
    if (!this.options.largeResult)
      throw new SidecarError('LARGE_RESULT_FAILED', `${why} but the request has no upload URL for a large result`);
    return this.options.largeResult;
  }

  private largeResult(): LargeResult {
    if (this.large) return this.large;
    const large: LargeResult = new LargeResult({
      requestId: this.options.requestId,
      uploadUrl: this.slot('output files appeared').uploadUrl,
      dir: this.dir,
      realRoot: this.realRoot,
      // A file a dropped result was still shipping is announced by nobody.
      onShipped: (file) => this.large === large && this.queueAnnouncement(file),
      // The container's to fix: a file not written as NAME.partial and renamed costs a second upload.
      onChanged: (files) =>
        this.options.log.warn(
          { files: files.slice(0, 20), count: files.length },
          'output files changed or went away after they were shipped; the result is uploaded again (write each as NAME.partial, then rename it)',
        ),
      signal: this.options.signal,
      metrics: this.options.metrics,
    });
    this.large = large;
    return large;
  }

  private queueAnnouncement(file: OutputFile): void {
    this.announce.push(file);
    if (this.announce.length >= ANNOUNCE_BATCH) this.flushAnnouncements();
    else this.announceTimer ??= setTimeout(() => this.flushAnnouncements(), ANNOUNCE_DELAY_MS);
  }

  private flushAnnouncements(): void {
    clearTimeout(this.announceTimer);
    this.announceTimer = undefined;
    const files = this.announce.splice(0, this.announce.length);
    if (files.length === 0) return;
    this.announcing = this.announcing.then(() =>
      this.options.publisher
        .output(files)
        .catch((err: Error) =>
          this.options.log.warn({ err: err.message }, 'output announcement could not be published'),
        ),
    );
  }
}

function summarize(manifest: Manifest): ResultManifest {
  let budget = MANIFEST_BUDGET_BYTES;
  const fit = <T>(list: T[]) =>
    list.filter((item) => {
      budget -= JSON.stringify(item).length + 1;
      return budget > 0;
    });
  return {
    files: fit(manifest.files),
    skipped: fit(manifest.skipped),
    fileCount: manifest.files.length,
    skippedCount: manifest.skipped.length,
  };
}

/** Writes a large body to disk, so the zip can be built, and rebuilt, with flat memory. */
async function spool(prefix: Buffer[], rest: AsyncIterator<Buffer>, path: string): Promise<void> {
  async function* all() {
    yield* prefix;
    for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
  }
  try {
    await pipeline(all, createWriteStream(path, { mode: 0o600 }));
  } catch (err) {
    const message = `reading the container's response failed: ${(err as Error).message}`;
    throw new SidecarError('INFERENCE_CONNECTION', message, { cause: err });
  }
}
