import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32, createDeflateRaw, deflateRaw } from 'node:zlib';
import { promisify } from 'node:util';
import {
  DEFLATED,
  FLAG_DATA_DESCRIPTOR,
  FLAG_UTF8,
  MAX_32,
  STORED,
  centralHeader,
  dataDescriptor,
  dosTime,
  encodeName,
  endRecords,
  localHeader,
  type EntryRecord,
} from './records.js';
import { ZipError } from './zip-error.js';

/**
 * A streaming zip writer (stored and deflated entries, Zip64 when sizes, offsets or the entry
 * count need it). It exists because the libraries measured could not carry a large result of
 * 100,000 tiny files: one slows down with the square of the entry count, one costs 0.7 ms an
 * entry, and the fast one cannot write archives over 4 GiB, which NVCF's 5 GB results need
 * (see docs/performance.md). Entries are written one at a time, in the order they are added;
 * the archive flows out of `output` with backpressure, and only the central directory, about
 * 100 bytes an entry, is kept.
 */

/** A streamed entry this large may end up past 4 GiB once deflate's framing is added: give it Zip64 fields. */
const STREAMED_ZIP64_FROM = 0xf000_0000;
const DIRECTORY_PAGE_BYTES = 64 * 1024;

const deflateRawAsync = promisify(deflateRaw);

export interface EntryOptions {
  /** Deflate (at this level) instead of storing. */
  compressionLevel?: number;
  mtime?: Date;
}

export interface StreamEntryOptions extends EntryOptions {
  /** The size the stream is expected to have; it decides whether the entry needs Zip64 fields. */
  expectedSize: number;
  /** Sees every uncompressed chunk, for a checksum of the caller's own. */
  observe?: (chunk: Buffer) => void;
}

export class ZipWriter {
  readonly output = new PassThrough({ highWaterMark: 256 * 1024 });

  constructor() {
    // Failures reach callers as rejected entries; an 'error' nobody listens to must not end the process.
    this.output.on('error', () => undefined);
  }

  private offset = 0;
  /** Bytes of the archive handed to `output` so far (its whole size once `end()` resolved). */
  get size(): number {
    return this.offset;
  }
  private entries = 0;
  private readonly directory = new DirectoryPages();
  private turn: Promise<unknown> = Promise.resolve();
  private failure: Error | undefined;
  private ended = false;

  /** Adds an entry whose bytes are all in hand; resolves once they are handed to `output`. */
  addBuffer(name: string, data: Uint8Array, options: EntryOptions = {}): Promise<void> {
    return this.inTurn(async () => {
      const stamp = dosTime(options.mtime);
      const crc = crc32(data);
      const level = options.compressionLevel;
      const body =
        level === undefined
          ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
          : await deflateRawAsync(data, { level });
      const entry: EntryRecord = {
        name: encodeName(name),
        method: level === undefined ? STORED : DEFLATED,
        flags: FLAG_UTF8,
        ...stamp,
        crc,
        compressedSize: body.length,
        size: data.byteLength,
        offset: this.offset,
        zip64: false,
      };
      entry.zip64 = entry.size >= MAX_32 || entry.compressedSize >= MAX_32;
      await this.write(Buffer.concat([localHeader(entry), body]));
      this.directory.push(centralHeader(entry));
    });
  }

  /** Adds an entry read from a stream; resolves with its size once the last byte is handed on. */
  addStream(name: string, source: Readable, options: StreamEntryOptions): Promise<{ size: number }> {
    // A source that never gets its turn must still be closed (it may hold a file open).
    const destroySource = (err: unknown) => {
      source.destroy();
      throw err;
    };
    return this.inTurn(async () => {
      const entry: EntryRecord = {
        name: encodeName(name),
        method: options.compressionLevel === undefined ? STORED : DEFLATED,
        flags: FLAG_UTF8 | FLAG_DATA_DESCRIPTOR,
        ...dosTime(options.mtime),
        crc: 0,
        compressedSize: 0,
        size: 0,
        offset: this.offset,
        zip64: options.expectedSize >= STREAMED_ZIP64_FROM,
      };
      await this.write(localHeader(entry));
      const observe = async function* (chunks: AsyncIterable<Buffer>) {
        for await (const chunk of chunks) {
          entry.crc = crc32(chunk, entry.crc);
          entry.size += chunk.length;
          options.observe?.(chunk);
          yield chunk;
        }
      };
      const sink = async (chunks: AsyncIterable<Buffer>) => {
        for await (const chunk of chunks) {
          entry.compressedSize += chunk.length;
          await this.write(chunk);
        }
      };
      if (options.compressionLevel === undefined) await pipeline(source, observe, sink);
      else await pipeline(source, observe, createDeflateRaw({ level: options.compressionLevel }), sink);
      if (!entry.zip64 && (entry.size >= MAX_32 || entry.compressedSize >= MAX_32)) {
        throw new ZipError(`${name} grew past 4 GiB while it was written (${options.expectedSize} bytes expected)`);
      }
      await this.write(dataDescriptor(entry));
      this.directory.push(centralHeader(entry));
      return { size: entry.size };
    }).catch(destroySource);
  }

  /** Writes the central directory and ends `output`; resolves when the last byte is handed on. */
  end(): Promise<void> {
    return this.inTurn(async () => {
      this.ended = true;
      const start = this.offset;
      for (const page of this.directory.take()) await this.write(page);
      await this.write(endRecords(this.entries, start, this.offset - start));
      this.output.end();
    });
  }

  /** Abandons the archive: `output` errors, and every entry not yet written fails. */
  destroy(err: Error): void {
    this.failure ??= err;
    this.output.destroy(err);
  }

  /**
   * The error for an entry that finds the archive broken: its own, so that what broke another
   * entry (a file that could not be read, say) is never mistaken for this entry's fault.
   */
  private brokenBy(): Error {
    return new ZipError(`the archive is broken: ${this.failure?.message ?? 'its output is closed'}`, {
      cause: this.failure,
    });
  }

  /** Entries are written strictly one after the other; once one fails, the archive is broken. */
  private inTurn<T>(work: () => Promise<T>): Promise<T> {
    const run = this.turn.then(() => {
      if (this.failure) throw this.brokenBy();
      if (this.ended) throw new ZipError('the archive is already ended');
      return work();
    });
    this.turn = run.then(
      () => this.entries++,
      (err: Error) => this.destroy(err),
    );
    return run;
  }

  private async write(chunk: Buffer): Promise<void> {
    if (this.output.destroyed) throw this.brokenBy();
    this.offset += chunk.length;
    if (this.output.write(chunk)) return;
    await new Promise<void>((resolve, reject) => {
      const settle = () => {
        this.output.off('drain', settle);
        this.output.off('close', settle);
        if (this.output.destroyed) reject(this.brokenBy());
        else resolve();
      };
      this.output.on('drain', settle);
      this.output.on('close', settle);
    });
  }
}

/**
 * The central directory, built up while entries are written, copied into pages of its own. Kept
 * as a Buffer per entry, each small record would be a slice of Node's shared 8 KiB allocation
 * pool and keep a whole slab alive: with 100,000 entries, hundreds of MiB for 7 MiB of records.
 */
class DirectoryPages {
  private pages: Buffer[] = [];
  private used = DIRECTORY_PAGE_BYTES;

  push(record: Buffer): void {
    if (record.length > DIRECTORY_PAGE_BYTES - this.used) {
      // Only the filled part of a full page is written out.
      if (this.pages.length > 0) this.pages[this.pages.length - 1] = this.pages.at(-1)!.subarray(0, this.used);
      this.pages.push(Buffer.allocUnsafeSlow(Math.max(DIRECTORY_PAGE_BYTES, record.length)));
      this.used = 0;
    }
    record.copy(this.pages.at(-1)!, this.used);
    this.used += record.length;
  }

  /** The filled part of every page, in order; the directory is empty afterwards. */
  take(): Buffer[] {
    const pages = this.pages.map((page, i) => (i === this.pages.length - 1 ? page.subarray(0, this.used) : page));
    this.pages = [];
    this.used = DIRECTORY_PAGE_BYTES;
    return pages;
  }
}
