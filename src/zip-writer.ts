import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { crc32, createDeflateRaw, deflateRaw } from 'node:zlib';
import { promisify } from 'node:util';

/**
 * A streaming zip writer (stored and deflated entries, Zip64 when sizes, offsets or the entry
 * count need it). It exists because the libraries measured could not carry a large result of
 * 100,000 tiny files: one slows down with the square of the entry count, one costs 0.7 ms an
 * entry, and the fast one cannot write archives over 4 GiB, which NVCF's 5 GB results need
 * (see docs/performance.md). Entries are written one at a time, in the order they are added;
 * the archive flows out of `output` with backpressure, and only the central directory, about
 * 100 bytes an entry, is kept.
 */

const LOCAL_HEADER = 0x04034b50;
const DATA_DESCRIPTOR = 0x08074b50;
const CENTRAL_HEADER = 0x02014b50;
const ZIP64_END = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const END = 0x06054b50;

const FLAG_DATA_DESCRIPTOR = 0x0008;
const FLAG_UTF8 = 0x0800;
const STORED = 0;
const DEFLATED = 8;
const VERSION_DEFAULT = 20;
const VERSION_ZIP64 = 45;
/** Made by Unix, so the permissions below are read as Unix mode bits. */
const MADE_BY = (3 << 8) | VERSION_ZIP64;
const REGULAR_FILE_RW_R_R = (0o100644 << 16) >>> 0;
const MAX_32 = 0xffffffff;
const MAX_16 = 0xffff;
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

interface Written {
  name: Buffer;
  method: number;
  flags: number;
  time: number;
  date: number;
  crc: number;
  compressedSize: number;
  size: number;
  offset: number;
  /** Whether the local header carried Zip64 fields: the central header then carries them too. */
  zip64: boolean;
}

export class ZipWriter {
  readonly output = new PassThrough({ highWaterMark: 256 * 1024 });

  constructor() {
    // Failures reach callers as rejected entries; an 'error' nobody listens to must not end the process.
    this.output.on('error', () => undefined);
  }

  private offset = 0;
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
      const body = level === undefined ? Buffer.from(data.buffer, data.byteOffset, data.byteLength) : await deflateRawAsync(data, { level });
      const entry: Written = { name: encodeName(name), method: level === undefined ? STORED : DEFLATED, flags: FLAG_UTF8, ...stamp, crc, compressedSize: body.length, size: data.byteLength, offset: this.offset, zip64: false };
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
      const entry: Written = { name: encodeName(name), method: options.compressionLevel === undefined ? STORED : DEFLATED, flags: FLAG_UTF8 | FLAG_DATA_DESCRIPTOR, ...dosTime(options.mtime), crc: 0, compressedSize: 0, size: 0, offset: this.offset, zip64: options.expectedSize >= STREAMED_ZIP64_FROM };
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
        throw new Error(`${name} grew past 4 GiB while it was written (${options.expectedSize} bytes expected)`);
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
    return new Error(`the archive is broken: ${this.failure?.message ?? 'its output is closed'}`, { cause: this.failure });
  }

  /** Entries are written strictly one after the other; once one fails, the archive is broken. */
  private inTurn<T>(work: () => Promise<T>): Promise<T> {
    const run = this.turn.then(() => {
      if (this.failure) throw this.brokenBy();
      if (this.ended) throw new Error('the archive is already ended');
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

function encodeName(name: string): Buffer {
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length === 0 || bytes.length > MAX_16) throw new Error(`an archive entry name must be 1 to ${MAX_16} bytes`);
  return bytes;
}

/** MS-DOS date and time, in local time as zip readers expect, to two seconds. */
function dosTime(when = new Date()): { time: number; date: number } {
  const year = Math.min(Math.max(when.getFullYear(), 1980), 2107);
  return {
    time: (when.getHours() << 11) | (when.getMinutes() << 5) | Math.floor(when.getSeconds() / 2),
    date: ((year - 1980) << 9) | ((when.getMonth() + 1) << 5) | when.getDate(),
  };
}

function localHeader(entry: Written): Buffer {
  const { zip64 } = entry;
  const streamed = (entry.flags & FLAG_DATA_DESCRIPTOR) !== 0;
  const extra = zip64 ? zip64Extra(streamed ? [0, 0] : [entry.size, entry.compressedSize]) : Buffer.alloc(0);
  const header = Buffer.alloc(30);
  header.writeUInt32LE(LOCAL_HEADER, 0);
  header.writeUInt16LE(zip64 ? VERSION_ZIP64 : VERSION_DEFAULT, 4);
  header.writeUInt16LE(entry.flags, 6);
  header.writeUInt16LE(entry.method, 8);
  header.writeUInt16LE(entry.time, 10);
  header.writeUInt16LE(entry.date, 12);
  // A streamed entry's checksum and sizes follow its data, in the data descriptor.
  header.writeUInt32LE(streamed ? 0 : entry.crc, 14);
  header.writeUInt32LE(zip64 ? MAX_32 : streamed ? 0 : entry.compressedSize, 18);
  header.writeUInt32LE(zip64 ? MAX_32 : streamed ? 0 : entry.size, 22);
  header.writeUInt16LE(entry.name.length, 26);
  header.writeUInt16LE(extra.length, 28);
  return Buffer.concat([header, entry.name, extra]);
}

function dataDescriptor(entry: Written): Buffer {
  const { zip64 } = entry;
  const descriptor = Buffer.alloc(zip64 ? 24 : 16);
  descriptor.writeUInt32LE(DATA_DESCRIPTOR, 0);
  descriptor.writeUInt32LE(entry.crc, 4);
  if (zip64) {
    descriptor.writeBigUInt64LE(BigInt(entry.compressedSize), 8);
    descriptor.writeBigUInt64LE(BigInt(entry.size), 16);
  } else {
    descriptor.writeUInt32LE(entry.compressedSize, 8);
    descriptor.writeUInt32LE(entry.size, 12);
  }
  return descriptor;
}

function centralHeader(entry: Written): Buffer {
  // Zip64 carries, in this order, only the values too large for their 32-bit fields.
  const large = [entry.size, entry.compressedSize, entry.offset].map((value, i) => value >= MAX_32 || (i < 2 && entry.zip64));
  const extra = large.some(Boolean) ? zip64Extra([entry.size, entry.compressedSize, entry.offset].filter((_, i) => large[i])) : Buffer.alloc(0);
  const header = Buffer.alloc(46);
  header.writeUInt32LE(CENTRAL_HEADER, 0);
  header.writeUInt16LE(MADE_BY, 4);
  header.writeUInt16LE(extra.length > 0 ? VERSION_ZIP64 : VERSION_DEFAULT, 6);
  header.writeUInt16LE(entry.flags, 8);
  header.writeUInt16LE(entry.method, 10);
  header.writeUInt16LE(entry.time, 12);
  header.writeUInt16LE(entry.date, 14);
  header.writeUInt32LE(entry.crc, 16);
  header.writeUInt32LE(large[1] ? MAX_32 : entry.compressedSize, 20);
  header.writeUInt32LE(large[0] ? MAX_32 : entry.size, 24);
  header.writeUInt16LE(entry.name.length, 28);
  header.writeUInt16LE(extra.length, 30);
  // Comment length, starting disk and internal attributes stay 0.
  header.writeUInt32LE(REGULAR_FILE_RW_R_R, 38);
  header.writeUInt32LE(large[2] ? MAX_32 : entry.offset, 42);
  return Buffer.concat([header, entry.name, extra]);
}

function zip64Extra(values: number[]): Buffer {
  const extra = Buffer.alloc(4 + 8 * values.length);
  extra.writeUInt16LE(0x0001, 0);
  extra.writeUInt16LE(8 * values.length, 2);
  values.forEach((value, i) => extra.writeBigUInt64LE(BigInt(value), 4 + 8 * i));
  return extra;
}

/** The end of central directory record, preceded by its Zip64 form and locator when a field overflows. */
function endRecords(entries: number, directoryOffset: number, directorySize: number): Buffer {
  const zip64 = entries >= MAX_16 || directoryOffset >= MAX_32 || directorySize >= MAX_32;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(END, 0);
  end.writeUInt16LE(Math.min(entries, MAX_16), 8);
  end.writeUInt16LE(Math.min(entries, MAX_16), 10);
  end.writeUInt32LE(Math.min(directorySize, MAX_32), 12);
  end.writeUInt32LE(Math.min(directoryOffset, MAX_32), 16);
  if (!zip64) return end;
  const record = Buffer.alloc(56);
  record.writeUInt32LE(ZIP64_END, 0);
  record.writeBigUInt64LE(44n, 4);
  record.writeUInt16LE(MADE_BY, 12);
  record.writeUInt16LE(VERSION_ZIP64, 14);
  record.writeBigUInt64LE(BigInt(entries), 24);
  record.writeBigUInt64LE(BigInt(entries), 32);
  record.writeBigUInt64LE(BigInt(directorySize), 40);
  record.writeBigUInt64LE(BigInt(directoryOffset), 48);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(ZIP64_LOCATOR, 0);
  locator.writeBigUInt64LE(BigInt(directoryOffset + directorySize), 8);
  locator.writeUInt32LE(1, 16);
  return Buffer.concat([record, locator, end]);
}
