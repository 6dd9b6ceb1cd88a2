import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../shared/log.js';
import type { WorkerConfig } from './config.js';

/** Older than any request can live (work messages expire after 2 h), so nobody still uses it. */
const STALE_AFTER_MS = 2 * 3_600_000;
const SWEEP_EVERY_MS = 30 * 60_000;
/** Request directories and spool files are named after request ids. */
const REQUEST_NAMED = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(\.\d+\.response)?$/i;

/**
 * Removes what a crashed worker left behind: per-request asset and output directories and spool
 * files, once they are older than any request can be. A clean run removes its own at once; this
 * only catches leftovers (the shared volume outlives a container restart), by age, because other
 * workers may share the directories.
 */
export class Janitor {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly dirs: readonly string[],
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
      const names = await readdir(dir).catch(() => [] as string[]);
      for (const name of names) {
        if (!REQUEST_NAMED.test(name)) continue;
        const path = join(dir, name);
        const info = await stat(path).catch(() => undefined);
        if (!info || now - info.mtimeMs < STALE_AFTER_MS) continue;
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
  return new Janitor([config.assetDir, config.responseDir, config.spoolDir], log);
}
