import { createHash } from 'node:crypto';
import { constants, type Dirent } from 'node:fs';
import { lstat, open, readdir, readlink, realpath, type FileHandle } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { NvcfError } from '../../shared/errors.js';
import type { SkippedFile } from '../../shared/protocol.js';

/**
 * The rules for what may leave a request's output directory. Only regular files strictly inside
 * it are shipped: symbolic links, hard links, FIFOs, sockets and devices are skipped and reported, and each
 * file is opened without following links and checked again through its descriptor, so a file
 * swapped for a link between the check and the open is still caught.
 */

const PARTIAL_SUFFIX = '.partial';
export const PROGRESS_FILE = 'progress';

export type OutputKind = 'final' | 'partial' | 'progress' | 'unsafe-name';

/** An archive entry name for a path under `root`, or undefined when it must not become one. */
export function entryName(root: string, path: string): string | undefined {
  const rel = relative(root, path);
  if (rel === '' || rel.startsWith('..') || rel.startsWith(sep)) return undefined;
  const name = rel.split(sep).join('/');
  // Zip readers on other systems treat "\" as a separator and may act on control characters.
  if (/[\\\u0000-\u001f\u007f]/.test(name)) return undefined;
  return name;
}

export function classify(name: string): OutputKind {
  if (name === PROGRESS_FILE) return 'progress';
  if (name.endsWith(PARTIAL_SUFFIX)) return 'partial';
  return 'final';
}

/** Why a file that was listed could not be opened: it is gone (removed or renamed meanwhile). */
export const REMOVED_BEFORE_READ = 'removed before it was read';

/** Why a regular file with more than one name is not shipped. */
const HARD_LINK = 'hard link (the file has more than one name)';

export type Opened = { handle: FileHandle; size: number; mtimeMs: number } | { skipped: string };

/** Opens a candidate output for reading, or says why it is not shipped. */
export async function openOutput(realRoot: string, path: string): Promise<Opened> {
  let handle: FileHandle;
  try {
    const link = await lstat(path);
    if (link.isSymbolicLink()) return { skipped: 'symbolic link' };
    if (!link.isFile()) return { skipped: 'not a regular file' };
    // O_NONBLOCK: if the path became a FIFO since lstat, open must not wait for a writer.
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return {
      skipped: code === 'ELOOP' ? 'symbolic link' : code === 'ENOENT' ? REMOVED_BEFORE_READ : `unreadable (${code})`,
    };
  }
  let skipped: string;
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) skipped = 'not a regular file';
    // A second name can point at any file the container may read (a hard link to /etc/shadow
    // lies inside the directory by path); like a symlink, it is reported, never followed.
    else if (stat.nlink > 1) skipped = HARD_LINK;
    else if (!(await whereIs(handle, path)).startsWith(realRoot + sep)) skipped = 'outside the output directory';
    else return { handle, size: stat.size, mtimeMs: stat.mtimeMs };
  } catch (err) {
    skipped = (err as Error).message;
  }
  await handle.close();
  return { skipped };
}

/** The real path of an open file: from /proc on Linux (no race), else from the name. */
async function whereIs(handle: FileHandle, path: string): Promise<string> {
  try {
    return await readlink(`/proc/self/fd/${handle.fd}`);
  } catch {
    return realpath(path);
  }
}

/**
 * Reads a small file under the same rules as a shipped output (no links, no FIFOs, nothing
 * outside the directory), refusing it unread when it is larger than `maxBytes`.
 */
export async function readSmallOutput(
  realRoot: string,
  path: string,
  maxBytes: number,
): Promise<{ text: string } | { refused: string }> {
  const opened = await openOutput(realRoot, path);
  if ('skipped' in opened) return { refused: opened.skipped };
  try {
    if (opened.size > maxBytes) return { refused: `${opened.size} bytes, over the ${maxBytes}-byte limit` };
    const buffer = Buffer.alloc(maxBytes + 1);
    const { bytesRead } = await opened.handle.read(buffer, 0, buffer.length, 0);
    if (bytesRead > maxBytes) return { refused: `over the ${maxBytes}-byte limit` };
    return { text: buffer.subarray(0, bytesRead).toString('utf8') };
  } finally {
    await opened.handle.close();
  }
}

/**
 * Size and SHA-256 of an open file (of its first `maxBytes` at most), read with positioned reads
 * (no stream state on the handle).
 */
export async function digest(handle: FileHandle, maxBytes = Infinity): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  const buffer = Buffer.allocUnsafe(256 * 1024);
  let size = 0;
  while (size < maxBytes) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.length, maxBytes - size), size);
    if (bytesRead === 0) break;
    hash.update(buffer.subarray(0, bytesRead));
    size += bytesRead;
  }
  return { size, sha256: hash.digest('hex') };
}

export interface DirectoryScan {
  finals: { name: string; path: string }[];
  skipped: SkippedFile[];
}

/** Everything in the output directory, sorted into what can ship and what cannot (and why). */
export async function scanOutputs(root: string): Promise<DirectoryScan> {
  const scan: DirectoryScan = { finals: [], skipped: [] };
  for await (const entry of walk(root)) {
    const path = join(entry.parentPath, entry.name);
    const name = entryName(root, path);
    if (name === undefined) {
      scan.skipped.push({
        name: JSON.stringify(relative(root, path)),
        reason: 'name cannot be stored safely in an archive',
      });
      continue;
    }
    const kind = classify(name);
    if (kind === 'progress') continue;
    if (kind === 'partial') scan.skipped.push({ name, reason: 'still .partial when the response arrived' });
    else if (entry.isSymbolicLink()) scan.skipped.push({ name, reason: 'symbolic link' });
    else if (!entry.isFile()) scan.skipped.push({ name, reason: 'not a regular file' });
    else scan.finals.push({ name, path });
  }
  return scan;
}

/**
 * Every non-directory entry below `root`, depth first, never entering a linked directory. A walk
 * of our own: Node's recursive readdir costs more than the rest of a small request's file work.
 */
async function* walk(root: string): AsyncGenerator<Dirent> {
  const pending = [root];
  for (let dir = pending.pop(); dir !== undefined; dir = pending.pop()) {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => [] as Dirent[]);
    for (const entry of entries) {
      if (entry.isDirectory()) pending.push(join(dir, entry.name));
      else yield Object.assign(entry, { parentPath: dir });
    }
  }
}

const STREAM_CHUNK_BYTES = 256 * 1024;

/** A read of one file failed, as opposed to the archive it was being written into. */
export class FileReadError extends NvcfError {
  override name = 'FileReadError';
  /** The same file read again fails the same way, as far as anyone can tell. */
  readonly retry = 'give-up';
  constructor(
    readonly file: string,
    cause: unknown,
  ) {
    super((cause as Error).message, { cause });
  }
}

/** The first `size` bytes of an open file, in chunks, by positioned reads. */
export async function* chunksOf(handle: FileHandle, size: number, name: string): AsyncGenerator<Buffer> {
  for (let position = 0; position < size;) {
    const chunk = Buffer.allocUnsafe(Math.min(STREAM_CHUNK_BYTES, size - position));
    let bytesRead: number;
    try {
      ({ bytesRead } = await handle.read(chunk, 0, chunk.length, position));
    } catch (err) {
      throw new FileReadError(name, err);
    }
    if (bytesRead === 0) return;
    position += bytesRead;
    yield chunk.subarray(0, bytesRead);
  }
}

/** The first `size` bytes of a file (fewer if it shrank), in as few reads as it takes. */
export async function readWhole(handle: FileHandle, size: number): Promise<Buffer> {
  const buffer = Buffer.allocUnsafe(size);
  let filled = 0;
  while (filled < size) {
    const { bytesRead } = await handle.read(buffer, filled, size - filled, filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buffer.subarray(0, filled);
}
