import { realpath } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { SidecarError } from './errors.js';
import { LargeResult, type BodySource, type Manifest } from './large-result.js';
import type { Logger } from './log.js';
import { PROGRESS_FILE, classify, entryName, scanOutputs } from './output-files.js';
import { ProgressReporter } from './progress.js';
import type { OutputFile } from './protocol.js';
import type { ResponsePublisher, ResultManifest } from './publish.js';

/** Announcements of finished files are batched for this long, and at most this many per message. */
const ANNOUNCE_DELAY_MS = 10;
const ANNOUNCE_BATCH = 200;
/** Room for the manifest in the final message; longer lists are cut and counted. */
const MANIFEST_BUDGET_BYTES = 256 * 1024;

/**
 * One watcher (native events) on BASE_RESPONSE_DIR for the whole worker, as NVCF's worker has:
 * events are routed by their first path segment, the request id, to that request's outputs.
 * Events for directories no request owns are ignored, so one request never sees another's files.
 */
export class OutputWatcher {
  private readonly requests = new Map<string, RequestOutputs>();

  private constructor(
    private readonly baseDir: string,
    private readonly watcher: FSWatcher,
  ) {}

  static async start(baseDir: string, log: Logger): Promise<OutputWatcher> {
    const watcher = watch(baseDir, { ignoreInitial: true, followSymlinks: false, atomic: false, ignorePermissionErrors: true, depth: 64 });
    const outputs = new OutputWatcher(baseDir, watcher);
    watcher.on('add', (path) => outputs.route(path, 'add'));
    watcher.on('change', (path) => outputs.route(path, 'change'));
    // Request directories come and go all the time; a vanished path is not worth more than debug.
    watcher.on('error', (err) => log.debug({ err: (err as Error).message }, 'output watcher'));
    await new Promise<void>((resolve) => watcher.once('ready', resolve));
    return outputs;
  }

  track(requestId: string, outputs: RequestOutputs): () => void {
    this.requests.set(requestId, outputs);
    return () => this.requests.delete(requestId);
  }

  async close(): Promise<void> {
    await this.watcher.close();
  }

  private route(path: string, event: 'add' | 'change'): void {
    const rel = relative(this.baseDir, path);
    const slash = rel.indexOf(sep);
    if (slash <= 0) return;
    this.requests.get(rel.slice(0, slash))?.seen(path, event);
  }
}

export interface RequestOutputsOptions {
  requestId: string;
  dir: string;
  uploadUrl: string | undefined;
  publisher: ResponsePublisher;
  log: Logger;
  signal: AbortSignal;
}

/**
 * The output side of one request in compatibility mode: progress reports, finished files
 * announced and shipped as they appear, and, at the end, the large result if there is one.
 */
export class RequestOutputs {
  private readonly progress: ProgressReporter;
  private large: LargeResult | undefined;
  private readonly announce: OutputFile[] = [];
  private announceTimer: NodeJS.Timeout | undefined;
  private announcing: Promise<void> = Promise.resolve();
  private realRoot: string;
  private closed = false;

  constructor(private readonly options: RequestOutputsOptions) {
    this.realRoot = options.dir;
    const send = (percent: number, headers: [string, string][], body: Buffer) => options.publisher.progress(percent, headers, body);
    this.progress = new ProgressReporter(join(options.dir, PROGRESS_FILE), () => this.realRoot, options.requestId, send, options.log);
  }

  /** Resolves the directory's real path, against which every shipped file is checked. */
  async init(): Promise<this> {
    this.realRoot = await realpath(this.options.dir);
    return this;
  }

  seen(path: string, event: 'add' | 'change'): void {
    if (this.closed) return;
    const name = entryName(this.options.dir, path);
    if (name === undefined) return; // reported by the final scan
    const kind = classify(name);
    if (kind === 'progress') this.progress.changed();
    else if (kind === 'final' && event === 'add' && this.options.uploadUrl) this.largeResult().addOutput(name, path);
  }

  /**
   * Stops progress and announcements (nothing of either is sent after this resolves) and sweeps
   * the directory for finished files the events have not delivered yet. Returns true when there
   * are output files, which makes the result a large one.
   */
  async settle(): Promise<boolean> {
    this.closed = true;
    await this.progress.close();
    const scan = await scanOutputs(this.options.dir);
    if (scan.finals.length > 0 && !this.options.uploadUrl) {
      throw new SidecarError('LARGE_RESULT_FAILED', `the container left ${scan.finals.length} output file(s) but the request has no upload URL for a large result`);
    }
    for (const { name, path } of scan.finals) this.largeResult().addOutput(name, path);
    for (const skipped of scan.skipped) {
      this.options.log.warn({ file: skipped.name, reason: skipped.reason }, 'output file not shipped');
      this.large?.skip(skipped);
    }
    return this.large !== undefined;
  }

  /** Completes the large result with the response body; resolves with its manifest for the final. */
  async finish(body: BodySource): Promise<ResultManifest> {
    if (!this.options.uploadUrl) throw new SidecarError('LARGE_RESULT_FAILED', 'the response is over the inline limit but the request has no upload URL for a large result');
    const manifest = await this.largeResult().finish(body);
    this.flushAnnouncements();
    await this.announcing;
    return summarize(manifest);
  }

  /** The answer will not be a large result (an error, or the request ended): drop the upload. */
  abandon(): void {
    this.closed = true;
    clearTimeout(this.announceTimer);
    this.announce.length = 0;
    this.large?.abandon();
    void this.progress.close();
  }

  private largeResult(): LargeResult {
    this.large ??= new LargeResult(this.options.requestId, this.options.uploadUrl!, this.realRoot, (file) => this.queueAnnouncement(file), this.options.signal);
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
      this.options.publisher.output(files).catch((err: Error) => this.options.log.warn({ err: err.message }, 'output announcement could not be published')),
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
  return { files: fit(manifest.files), skipped: fit(manifest.skipped), fileCount: manifest.files.length, skippedCount: manifest.skipped.length };
}
