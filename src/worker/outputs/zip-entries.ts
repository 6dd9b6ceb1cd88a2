import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat, type FileHandle } from 'node:fs/promises';
import { extname } from 'node:path';
import { Readable } from 'node:stream';
import type { EntryOptions } from '../../zip/writer.js';
import { chunksOf, digest, FileReadError, readWhole, type Opened } from './file-rules.js';
import type { UploadAttempt } from './upload.js';

/**
 * How one output file, or the container's body, becomes an entry of a large result's zip: read
 * whole or streamed, hashed on the way, deflated or stored. The order, retries and rebuilds of
 * a whole result are large-result.ts.
 */

/** Files up to this size are read whole and added from memory; larger ones are streamed. */
const READ_WHOLE_BYTES = 64 * 1024;
const TINY_FILE_BYTES = 4 * 1024;
/** Already-compressed formats gain nothing from deflate and would only cost CPU. */
const STORED_EXTENSIONS = new Set(
  (
    '.png .jpg .jpeg .gif .webp .avif .mp4 .webm .mov .mkv .mp3 .ogg .opus .flac .aac .m4a ' +
    '.zip .gz .tgz .bz2 .xz .zst .7z .npz .safetensors'
  ).split(' '),
);

/** The container's body: in memory, or spooled to a file when it was too large to hold. */
export type BodySource = { bytes: Uint8Array } | { file: string };

/** What was shipped of one output file; its size and mtime say whether it changed since. */
export type Shipped = { size: number; mtimeMs: number; sha256: string };

/**
 * Adds one open file to the zip, reading only the bytes it had when opened, and hashes it on
 * the way. If the zip breaks meanwhile (the upload failed), the file is still recorded: the
 * next attempt ships it from disk. Throws only when the file itself cannot be read; if that
 * happens mid-entry, the zip holds half an entry and the upload starts over at the end.
 */
export async function addOutputFile(
  attempt: UploadAttempt,
  name: string,
  { handle, size, mtimeMs }: Extract<Opened, { handle: FileHandle }>,
): Promise<Shipped> {
  if (size <= READ_WHOLE_BYTES) {
    const bytes = await readWhole(handle, size);
    const shipped = { size: bytes.length, mtimeMs, sha256: createHash('sha256').update(bytes).digest('hex') };
    // If the archive broke, the file is still fine: the next attempt ships it from disk.
    if (!attempt.broken)
      await attempt.zip
        .addBuffer(name, bytes, entryOptions(name, bytes.length, mtimeMs))
        .catch((err: Error) => attempt.abort(err));
    return shipped;
  }
  if (attempt.broken) return { mtimeMs, ...(await digest(handle, size)) };
  const hash = createHash('sha256');
  try {
    const written = await attempt.zip.addStream(name, Readable.from(chunksOf(handle, size, name)), {
      expectedSize: size,
      observe: (chunk) => hash.update(chunk),
      ...entryOptions(name, size, mtimeMs),
    });
    return { size: written.size, mtimeMs, sha256: hash.digest('hex') };
  } catch (err) {
    // Half an entry is in this zip either way: the upload starts over at the end.
    attempt.abort(err as Error);
    if (err instanceof FileReadError && err.file === name) throw err.cause;
    // The archive broke (the upload failed or ended early), not the file: record it for the next attempt.
    return { mtimeMs, ...(await digest(handle, size)) };
  }
}

/** Adds the container's body as `<requestId>.response`, from memory or from the file it was spooled to. */
export async function addResponseBody(attempt: UploadAttempt, requestId: string, body: BodySource): Promise<void> {
  const name = `${requestId}.response`;
  if ('bytes' in body) return attempt.zip.addBuffer(name, body.bytes, { compressionLevel: 1 });
  const { size } = await stat(body.file);
  await attempt.zip.addStream(name, createReadStream(body.file), { expectedSize: size, compressionLevel: 1 });
}

/**
 * Fast deflate (level 1) for everything but formats that are compressed already and tiny files,
 * whose few bytes are not worth a compressor each.
 */
function entryOptions(name: string, size: number, mtimeMs: number): EntryOptions {
  const mtime = new Date(mtimeMs);
  return size < TINY_FILE_BYTES || STORED_EXTENSIONS.has(extname(name).toLowerCase())
    ? { mtime }
    : { mtime, compressionLevel: 1 };
}
