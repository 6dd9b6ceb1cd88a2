import { ZipError } from './zip-error.js';

/**
 * The byte layout of a zip archive's records (PKWARE's APPNOTE 6.3): local headers, data
 * descriptors, central-directory headers and the end records, with Zip64 fields where a size, an
 * offset or the entry count does not fit the classic ones. The writer decides what goes in them.
 */

const LOCAL_HEADER = 0x04034b50;
const DATA_DESCRIPTOR = 0x08074b50;
const CENTRAL_HEADER = 0x02014b50;
const ZIP64_END = 0x06064b50;
const ZIP64_LOCATOR = 0x07064b50;
const END = 0x06054b50;

export const FLAG_DATA_DESCRIPTOR = 0x0008;
export const FLAG_UTF8 = 0x0800;
export const STORED = 0;
export const DEFLATED = 8;
const VERSION_DEFAULT = 20;
const VERSION_ZIP64 = 45;
/** Made by Unix, so the permissions below are read as Unix mode bits. */
const MADE_BY = (3 << 8) | VERSION_ZIP64;
const REGULAR_FILE_RW_R_R = (0o100644 << 16) >>> 0;
export const MAX_32 = 0xffffffff;
const MAX_16 = 0xffff;

/** An entry as the records describe it; sizes and checksum are known once its data is written. */
export interface EntryRecord {
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

export function encodeName(name: string): Buffer {
  const bytes = Buffer.from(name, 'utf8');
  if (bytes.length === 0 || bytes.length > MAX_16)
    throw new ZipError(`an archive entry name must be 1 to ${MAX_16} bytes`);
  return bytes;
}

/** MS-DOS date and time, in local time as zip readers expect, to two seconds. */
export function dosTime(when = new Date()): { time: number; date: number } {
  const year = Math.min(Math.max(when.getFullYear(), 1980), 2107);
  return {
    time: (when.getHours() << 11) | (when.getMinutes() << 5) | Math.floor(when.getSeconds() / 2),
    date: ((year - 1980) << 9) | ((when.getMonth() + 1) << 5) | when.getDate(),
  };
}

export function localHeader(entry: EntryRecord): Buffer {
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

export function dataDescriptor(entry: EntryRecord): Buffer {
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

export function centralHeader(entry: EntryRecord): Buffer {
  // Zip64 carries, in this order, only the values too large for their 32-bit fields.
  const large = [entry.size, entry.compressedSize, entry.offset].map(
    (value, i) => value >= MAX_32 || (i < 2 && entry.zip64),
  );
  const extra = large.some(Boolean)
    ? zip64Extra([entry.size, entry.compressedSize, entry.offset].filter((_, i) => large[i]))
    : Buffer.alloc(0);
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
export function endRecords(entries: number, directoryOffset: number, directorySize: number): Buffer {
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
