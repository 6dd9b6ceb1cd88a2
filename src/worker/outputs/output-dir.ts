import { join } from 'node:path';
import { SidecarError } from '../../shared/errors.js';
import { LargeResult, type BodySource, type Manifest } from './large-result.js';
import type { Logger } from '../../shared/log.js';
import { PROGRESS_FILE, classify, entryName, scanOutputs } from './file-rules.js';
import { ProgressReporter } from './progress-file.js';
import type { OutputFile } from '../../shared/protocol.js';
import type { ResponsePublisher, ResultManifest } from '../request/publisher.js';
import { TreeWatcher } from './tree-watch.js';

/** Announcements of finished files are batched for this long, and at most this many per message. */
const ANNOUNCE_DELAY_MS = 10;
const ANNOUNCE_BATCH = 200;
/** Room for the manifest in the final message; longer lists are cut and counted. */
const MANIFEST_BUDGET_BYTES = 256 * 1024;

export interface RequestOutputsOptions {
  requestId: string;
  dir: string;
  /** The real path of BASE_RESPONSE_DIR, resolved once: `dir` must lie directly inside it. */
  realBase: string;
  uploadUrl: string | undefined;
  publisher: ResponsePublisher;
  log: Logger;
  signal: AbortSignal;
}

/**
 * The output side of one request in compatibility mode: progress reports, finished files
 * announced and shipped as they appear, and, at the end, the large result if there is one. Each
 * request watches its own directory (native events, no polling), so the cost of watching does not
 * grow with the number of requests in flight, and no request can see another's events.
 */
export class RequestOutputs {
  private readonly progress: ProgressReporter;
  private large: LargeResult | undefined;
  private readonly announce: OutputFile[] = [];
  private announceTimer: NodeJS.Timeout | undefined;
  private announcing: Promise<void> = Promise.resolve();
  private realRoot: string;
  private watcher: TreeWatcher | undefined;
  private closed = false;

  constructor(private readonly options: RequestOutputsOptions) {
    this.realRoot = options.dir;
    const send = (percent: number, headers: [string, string][], body: Buffer) =>
      options.publisher.progress(percent, headers, body);
    this.progress = new ProgressReporter(
      join(options.dir, PROGRESS_FILE),
      () => this.realRoot,
      options.requestId,
      send,
      options.log,
    );
  }

  /** Starts watching; the watch is in place, before the container is called, when this resolves. */
  init(): this {
    // Every shipped file's real path is checked against this: a request directory swapped for
    // a link by the container leads nowhere useful.
    this.realRoot = join(this.options.realBase, this.options.requestId);
    this.watcher = new TreeWatcher(
      (path) => this.seen(path),
      (path) => this.large?.has(entryName(this.options.dir, path) ?? '') ?? false,
    );
    this.watcher.watchDir(this.options.dir);
    return this;
  }

  private stopWatching(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  private seen(path: string): void {
    if (this.closed) return;
    const name = entryName(this.options.dir, path);
    if (name === undefined) return; // reported by the final scan
    const kind = classify(name);
    if (kind === 'progress') this.progress.changed();
    // Shipped once per name; a file that keeps changing after that is shipped again at the end.
    else if (kind === 'final' && this.options.uploadUrl) this.largeResult().addOutput(name, true);
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
    const scan = await scanOutputs(this.options.dir);
    if (scan.finals.length > 0 && !this.options.uploadUrl) {
      throw new SidecarError(
        'LARGE_RESULT_FAILED',
        `the container left ${scan.finals.length} output file(s) but the request has no upload URL for a large result`,
      );
    }
    for (const { name } of scan.finals) this.largeResult().addOutput(name);
    for (const skipped of scan.skipped) {
      this.options.log.warn({ file: skipped.name, reason: skipped.reason }, 'output file not shipped');
      this.large?.skip(skipped);
    }
    return this.large !== undefined;
  }

  /** Completes the large result with the response body; resolves with its manifest for the final. */
  async finish(body: BodySource): Promise<ResultManifest> {
    if (!this.options.uploadUrl)
      throw new SidecarError(
        'LARGE_RESULT_FAILED',
        'the response is over the inline limit but the request has no upload URL for a large result',
      );
    const manifest = await this.largeResult().finish(body);
    this.flushAnnouncements();
    await this.announcing;
    return summarize(manifest);
  }

  /** The answer will not be a large result (an error, or the request ended): drop the upload. */
  abandon(): void {
    this.closed = true;
    this.stopWatching();
    clearTimeout(this.announceTimer);
    this.announce.length = 0;
    this.large?.abandon();
    void this.progress.close();
  }

  private largeResult(): LargeResult {
    this.large ??= new LargeResult({
      requestId: this.options.requestId,
      uploadUrl: this.options.uploadUrl!,
      dir: this.options.dir,
      realRoot: this.realRoot,
      onShipped: (file) => this.queueAnnouncement(file),
      signal: this.options.signal,
    });
    return this.large;
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
