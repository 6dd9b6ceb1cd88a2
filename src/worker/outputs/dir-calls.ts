import { lstatSync, readdirSync, renameSync, type Stats } from 'node:fs';
import { rm, rmdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { makeSharedDir } from '../shared-dir.js';

/**
 * The file-system calls behind a request's output directory, `<base>/<requestId>`: it must be
 * there, empty and mode 0777, when the container is called, and gone when the request ends.
 *
 * On ext4 a mkdir + rmdir pair costs 90–195 µs (37–138 µs of it system time: an inode and a
 * block allocated and freed, each journaled), and every request's pair locks the same base
 * directory; a rename in that directory costs 12–28 µs (docs/performance.md). So a directory found empty when its
 * request ends is not removed: it is renamed to a spare name in the same base directory, and the
 * next request renames a spare to its own name. The path a container sees, and when it exists,
 * are as before; a late write through the old path finds nothing there, as before.
 *
 * A spare is checked when it is taken, so nothing left in it (a late write through a descriptor
 * the container kept, or a planted entry) reaches the next request: it must still be a real
 * directory (not a link), ours, mode 0777, and unchanged since it was found empty. Its inode
 * and mtime prove the last: every entry made or removed in a directory sets its mtime to the current
 * time, so a spare whose mtime was already older than `SETTLED_MS` when it was found empty and
 * has not changed since holds nothing new; a spare changed more recently is listed again.
 * Anything else is discarded and the request gets a new directory. All calls here run on the
 * main thread, from the check to the rename, so no other request can take the same spare. The
 * listing that finds a directory empty is made only for one its watch saw nothing in, or whose
 * request ended before the watch began (20 ms cannot make many entries): never a long one.
 *
 * The stock holds only directories that requests have given back, so it never holds more than
 * the most requests that were ever running at once; the worker removes it when it stops, and
 * the janitor removes what a crashed worker left.
 */
/** Longer than the coarsest mtime a file system keeps (2 s on FAT), so a later change shows. */
const SETTLED_MS = 2_500;
/** Spare names are hidden and unique to this process, so workers sharing a base never collide. */
const SPARE_PREFIX = `.nvcf-spare-${randomBytes(4).toString('hex')}-`;

interface Spare {
  path: string;
  /** Inode and mtime when it was found empty, and whether it had been settled for SETTLED_MS by then. */
  ino: number;
  mtimeMs: number;
  settled: boolean;
}

const stock = new Map<string, Spare[]>();
let named = 0;
const uid = process.getuid?.();

/** One request's directory. */
export class OutputDirCalls {
  private readonly base: string;
  /** The spare this directory was made from, when it was settled: its mtime still proves it empty. */
  private settledFrom: Spare | undefined;

  constructor(private readonly path: string) {
    this.base = dirname(path);
  }

  /** Makes the directory: a spare renamed to this request's name, else a new one. */
  async create(): Promise<void> {
    const spares = stock.get(this.base);
    for (let spare = spares?.pop(); spare; spare = spares?.pop()) {
      if (takeable(spare)) {
        try {
          renameSync(spare.path, this.path);
          if (spare.settled) this.settledFrom = spare;
          return;
        } catch {
          // Gone (the janitor), or the name is taken (a directory left by an earlier delivery of
          // this request): the new directory below handles both as it always has.
        }
      }
      discard(spare.path);
    }
    await makeSharedDir(this.path);
  }

  /**
   * Gives the directory back when it is empty (true); false when it holds anything or is no
   * longer a directory of ours, and it is left where it is.
   */
  recycleIfEmpty(): boolean {
    let info: Stats;
    try {
      info = lstatSync(this.path);
      // Made from a settled spare and unchanged since: as empty as it was handed out. Else list it.
      const unchanged = this.settledFrom !== undefined && sameAs(this.settledFrom, info);
      if (!info.isDirectory() || (!unchanged && readdirSync(this.path).length > 0)) return false;
    } catch {
      return false;
    }
    const spare = join(this.base, `${SPARE_PREFIX}${named++}`);
    try {
      renameSync(this.path, spare);
    } catch {
      return false;
    }
    // A rename within one directory leaves the moved directory's mtime as it was.
    let spares = stock.get(this.base);
    if (!spares) stock.set(this.base, (spares = []));
    const { ino, mtimeMs } = info;
    spares.push({ path: spare, ino, mtimeMs, settled: Date.now() - mtimeMs > SETTLED_MS });
    return true;
  }
}

function takeable(spare: Spare): boolean {
  let info: Stats;
  try {
    info = lstatSync(spare.path);
  } catch {
    return false;
  }
  if (!info.isDirectory() || (info.mode & 0o7777) !== 0o777) return false;
  if (uid !== undefined && info.uid !== uid) return false;
  if (spare.settled && sameAs(spare, info)) return true;
  try {
    return readdirSync(spare.path).length === 0;
  } catch {
    return false;
  }
}

/** The same directory, with no entry made or removed in it since `spare` was recorded. */
function sameAs(spare: Spare, info: Stats): boolean {
  return info.ino === spare.ino && info.mtimeMs === spare.mtimeMs;
}

function discard(path: string): void {
  // Never follows a link: a planted one is removed, not what it points to.
  void rm(path, { recursive: true, force: true }).catch(() => undefined);
}

/** Removes the spare directories of `base`; for a worker that stops. */
export async function releaseSpareDirs(base: string): Promise<void> {
  const spares = stock.get(base) ?? [];
  stock.delete(base);
  await Promise.all(spares.map((spare) => rmdir(spare.path).catch(() => discard(spare.path))));
}
