import { lstat, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../shared/log.js';
import type { WorkerConfig } from './config.js';

/** Older than any request can live (work messages expire after 2 h), so nobody still uses it. */
const STALE_AFTER_MS = 2 * 3_600_000;
const SWEEP_EVERY_MS = 30 * 60_000;
/** Request directories and spool files are named after request ids. */
const REQUEST_NAMED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(\.\d+\.response)?$/i;

/** A directory the janitor sweeps, and whether anything stale in it goes or only request leftovers. */
export interface SweptDir {
  path: string;
  /**
   * Every stale entry goes, whatever its name: for BASE_RESPONSE_DIR, which the container can
   * write into (`NVCF-LARGE-OUTPUT-DIR/../x` lands there) and which holds nothing else of value.
   */
  everything?: boolean;
}

/**
 * Removes what a crashed worker left behind: per-request asset and output directories and spool
 * files, once they are older than any request can be, and anything a container wrote beside its
 * output directory. A clean run removes its own at once; this only catches leftovers (the shared
 * volume outlives a container restart), by age, because other workers may share the directories.
 * Entries are judged by lstat and removed without following links, so a planted link can neither
 * extend its life nor lead the removal elsewhere.
 */
export class Janitor {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly dirs: readonly SweptDir[],
    private readonly log: Logger,
  ) {}

  start(): void {
    void this.sweep();
    this.timer = setInterval(() => void this.sweep(), SWEEP_EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async sweep(now = Date.now()): Promise<number> {
    let removed = 0;
    for (const dir of this.dirs) {
      const names = await readdir(dir.path).catch(() => [] as string[]);
      for (const name of names) {
        if (!dir.everything && !REQUEST_NAMED.test(name)) continue;
        const path = join(dir.path, name);
        const info = await lstat(path).catch(() => undefined);
        // ctime, not mtime: an output directory recycled from a spare keeps the mtime it was
        // made with, while its rename to the request's name sets its ctime (dir-calls.ts).
        if (!info || now - info.ctimeMs < STALE_AFTER_MS) continue;
        await rm(path, { recursive: true, force: true }).then(
          () => removed++,
          (err: Error) => this.log.warn({ path, err: err.message }, 'could not remove a stale leftover'),
        );
      }
    }
    if (removed > 0) this.log.info({ removed }, 'removed stale leftovers of earlier runs');
    return removed;
  }
}

/** The janitor of a worker's directories: assets, outputs and the spool. */
export function janitorFor(config: WorkerConfig, log: Logger): Janitor {
  return new Janitor(
    [{ path: config.assetDir }, { path: config.responseDir, everything: true }, { path: config.spoolDir }],
    log,
  );
}
