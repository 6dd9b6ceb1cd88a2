import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, type FileHandle } from 'node:fs/promises';
import { extname } from 'node:path';
import { PassThrough, Transform, type Readable, type TransformCallback } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { ZipFile } from 'yazl';
import { SidecarError } from './errors.js';
import { digest, openOutput } from './output-files.js';
import type { OutputFile, SkippedFile } from './protocol.js';

/** Retries of a failed upload (NVCF's worker tries three more times), starting at 100 ms. */
const UPLOAD_RETRIES = 3;
const FIRST_RETRY_DELAY_MS = 100;
const TINY_FILE_BYTES = 4 * 1024;
/** Already-compressed formats gain nothing from deflate and would only cost CPU. */
const STORED_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.gif', '.webp', '.avif', '.mp4', '.webm', '.mov', '.mkv', '.mp3', '.ogg', '.opus', '.flac', '.aac', '.m4a', '.zip', '.gz', '.tgz', '.bz2', '.xz', '.zst', '.7z', '.npz', '.safetensors']);

const SKIPPED = Symbol('skipped');

export type BodySource = { bytes: Uint8Array } | { file: string };

/** For output files, the size and mtime when shipped: a file that changes later is shipped again. */
type Entry = { name: string; source: ({ path: string } & Stamp) | BodySource };
type Stamp = { size: number; mtimeMs: number };

export interface Manifest {
  files: OutputFile[];
  skipped: SkippedFile[];
}

/**
 * One large result: a zip of `<requestId>.response` (the container's body) and the finished
 * output files, streamed to the request's upload URL. Files are added as soon as they are final,
 * so the upload runs while the container still works. Every entry can be read again from disk or
 * memory, so a failed upload is retried from the start; memory stays flat whatever the sizes.
 */
export class LargeResult {
  private readonly entries: Entry[] = [];
  private readonly manifest: Manifest = { files: [], skipped: [] };
  private readonly names = new Set<string>();
  private attempt: Attempt | undefined;
  private queue: Promise<void> = Promise.resolve();
  private failure: Error | undefined;
  private abandoned = false;

  constructor(
    private readonly requestId: string,
    private readonly uploadUrl: string,
    private readonly realRoot: string,
    private readonly onShipped: (file: OutputFile) => void,
    private readonly signal: AbortSignal,
  ) {}

  get started(): boolean {
    return this.attempt !== undefined;
  }

  /** Ships a finished output file (in order of arrival); a name already shipped is ignored. */
  addOutput(name: string, path: string): void {
    if (this.names.has(name)) return;
    this.names.add(name);
    this.attempt ??= this.startAttempt();
    this.queue = this.queue
      .then(() => this.ship(name, path))
      .catch((err: Error) => {
        // The zip being written may hold half an entry now: skip the file and start over at the end.
        this.manifest.skipped.push({ name, reason: `unreadable: ${err.message}` });
        this.failure ??= err;
        this.attempt?.abort();
      });
  }

  skip(file: SkippedFile): void {
    if (this.names.has(file.name)) return;
    this.names.add(file.name);
    this.manifest.skipped.push(file);
  }

  /** Adds the response body, closes the zip and waits for the upload to be accepted. */
  async finish(body: BodySource): Promise<Manifest> {
    this.attempt ??= this.startAttempt();
    await this.queue;
    await this.reshipChanged();
    const response: Entry = { name: `${this.requestId}.response`, source: body };
    this.entries.push(response);
    let current = this.attempt;
    if (!this.failure) {
      addEntry(current.zip, response, true, this.realRoot);
      current.zip.end();
    }
    for (let retry = 0; ; retry++) {
      try {
        if (this.failure) throw this.failure;
        await current.done;
        return this.manifest;
      } catch (err) {
        this.failure = undefined;
        if (this.signal.aborted) throw this.signal.reason;
        if (!isRetryable(err) || retry >= UPLOAD_RETRIES) {
          throw new SidecarError('LARGE_RESULT_FAILED', `uploading the large result failed: ${(err as Error).message}`, { cause: err });
        }
        await sleep(FIRST_RETRY_DELAY_MS * 2 ** retry);
        current = this.startAttempt();
        for (const entry of this.entries) addEntry(current.zip, entry, entry === response, this.realRoot);
        current.zip.end();
      }
    }
  }

  /**
   * A file written under its final name (not via `.partial`) can be shipped while still growing.
   * Any shipped file whose size or mtime moved since is hashed again, and the zip is rebuilt from
   * disk, so the result always holds the files as they were when the response arrived.
   */
  private async reshipChanged(): Promise<void> {
    let changed = 0;
    for (const entry of [...this.entries]) {
      const source = entry.source;
      if (!('path' in source)) continue;
      const now = await lstat(source.path).catch(() => undefined);
      if (now && now.size === source.size && now.mtimeMs === source.mtimeMs) continue;
      changed++;
      const file = await this.withOutput(entry.name, source.path, async (handle) => {
        const { size, mtimeMs } = await handle.stat();
        Object.assign(source, { size, mtimeMs });
        return { name: entry.name, ...(await digest(handle)) };
      });
      const index = this.manifest.files.findIndex((f) => f.name === entry.name);
      if (file === SKIPPED) {
        this.manifest.files.splice(index, 1);
        this.entries.splice(this.entries.indexOf(entry), 1);
      } else this.manifest.files[index] = file;
    }
    if (changed > 0) {
      this.failure ??= new Error(`${changed} output file(s) changed after they were shipped`);
      this.attempt?.abort();
    }
  }

  /** Stops the upload; the storage side never sees a complete object. */
  abandon(): void {
    this.abandoned = true;
    this.attempt?.abort();
  }

  private async ship(name: string, path: string): Promise<void> {
    if (this.abandoned) return;
    let stamp: Stamp = { size: 0, mtimeMs: 0 };
    const stamped = async (handle: FileHandle) => {
      const { size, mtimeMs } = await handle.stat();
      stamp = { size, mtimeMs };
    };
    let file = this.failure ? undefined : await this.withOutput(name, path, async (handle) => (await stamped(handle), this.streamInto(this.attempt!, name, handle, stamp.size)));
    // The upload broke meanwhile: only record the file now; the retry at the end ships it.
    file ??= await this.withOutput(name, path, async (handle) => (await stamped(handle), { name, ...(await digest(handle)) }));
    if (file === SKIPPED) return;
    this.entries.push({ name, source: { path, ...stamp } });
    this.manifest.files.push(file);
    this.onShipped(file);
  }

  /** Opens an output under the safety rules, or records why it is skipped (and gives SKIPPED). */
  private async withOutput<T>(name: string, path: string, use: (handle: FileHandle) => Promise<T>): Promise<T | typeof SKIPPED> {
    const opened = await openOutput(this.realRoot, path);
    if ('skipped' in opened) {
      this.manifest.skipped.push({ name, reason: opened.skipped });
      return SKIPPED;
    }
    try {
      return await use(opened.handle);
    } finally {
      await opened.handle.close().catch(() => undefined);
    }
  }

  /**
   * Streams an open file into the zip, hashing it on the way, and resolves when it is all in;
   * resolves with undefined if the upload fails meanwhile (the file is shipped on the retry).
   */
  private streamInto(attempt: Attempt, name: string, handle: FileHandle, size: number): Promise<OutputFile | undefined> {
    return new Promise((resolve) => {
      const hasher = new Hasher();
      const input = handle.createReadStream({ start: 0, autoClose: false });
      // Any break leaves half an entry in this zip: end the attempt; the retry rebuilds it whole.
      input.on('error', () => {
        resolve(undefined);
        attempt.abort();
      });
      hasher.on('finish', () => resolve({ name, size: hasher.size, sha256: hasher.hex() }));
      attempt.done.catch(() => {
        resolve(undefined);
        input.destroy();
      });
      attempt.zip.addReadStream(input.pipe(hasher), name, entryOptions(name, false, size));
    });
  }

  private startAttempt(): Attempt {
    const attempt = new Attempt(this.uploadUrl, this.signal);
    attempt.done.catch((err: Error) => (this.failure ??= err));
    return attempt;
  }
}

class Attempt {
  readonly zip = new ZipFile();
  readonly done: Promise<void>;
  private readonly controller = new AbortController();

  constructor(url: string, signal: AbortSignal) {
    const body = new PassThrough();
    this.zip.outputStream.pipe(body);
    this.zip.on('error', (err: Error) => body.destroy(err));
    const stop = () => this.abort();
    signal.addEventListener('abort', stop, { once: true });
    this.done = request(url, {
      method: 'PUT',
      body,
      headers: { 'content-type': 'application/zip' },
      signal: this.controller.signal,
    })
      .then(async (answer) => {
        await answer.body.dump();
        if (answer.statusCode < 200 || answer.statusCode > 299) throw new UploadRejected(answer.statusCode);
      })
      .finally(() => signal.removeEventListener('abort', stop));
    this.done.catch(() => undefined);
  }

  abort(): void {
    this.controller.abort();
  }
}

class UploadRejected extends Error {
  constructor(readonly status: number) {
    super(`storage answered ${status}`);
  }
}

function isRetryable(err: unknown): boolean {
  if (err instanceof UploadRejected) return err.status >= 500;
  return !(err instanceof SidecarError);
}

/** Adds an entry for a retry: output files are re-opened under the same rules as the first time. */
function addEntry(zip: ZipFile, entry: Entry, isResponse: boolean, realRoot: string): void {
  const { source } = entry;
  const options = entryOptions(entry.name, isResponse, 'size' in source ? source.size : Infinity);
  if ('bytes' in source) return zip.addBuffer(Buffer.from(source.bytes), entry.name, options);
  if ('file' in source) return zip.addReadStreamLazy(entry.name, options, (cb) => cb(null, createReadStream(source.file) as Readable));
  zip.addReadStreamLazy(entry.name, options, (cb) => {
    openOutput(realRoot, source.path).then(
      (opened) => ('skipped' in opened ? cb(new Error(`${entry.name} changed since it was first shipped: ${opened.skipped}`), undefined as never) : cb(null, opened.handle.createReadStream() as Readable)),
      (err: Error) => cb(err, undefined as never),
    );
  });
}

/**
 * Fast deflate (level 1) for everything but formats that are compressed already and tiny files,
 * whose few bytes are not worth a compressor each (100,000 of them made a run take minutes).
 */
function entryOptions(name: string, isResponse: boolean, size = Infinity): { compress: false } | { compressionLevel: number } {
  if (isResponse) return { compressionLevel: 1 };
  return size < TINY_FILE_BYTES || STORED_EXTENSIONS.has(extname(name).toLowerCase()) ? { compress: false } : { compressionLevel: 1 };
}

class Hasher extends Transform {
  private readonly hash = createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }
  hex(): string {
    return this.hash.digest('hex');
  }
}
