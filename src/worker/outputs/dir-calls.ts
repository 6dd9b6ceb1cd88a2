import { rmdirSync } from 'node:fs';
import { rmdir } from 'node:fs/promises';
import { makeSharedDir } from '../shared-dir.js';

/**
 * Where the per-request output directory's two calls run: its mkdir before the container call
 * and its rmdir after it. While a request's directory is the only one open in this process, they
 * are made on the main thread, which has nothing else to do: each saves a hand-off to libuv's
 * thread pool and back, so a request answered alone answers sooner (bench scenario 1 at c = 1:
 * a/b 0.57 → 0.63, p50 1.29 → 1.15 ms). With other requests running they go through the pool:
 * on the main thread they would hold every other request up for their time on disk (all on the
 * main thread, c = 64: a/b 0.54 → 0.36; docs/performance.md).
 */
let open = 0;

/** One request's directory, counted as open from `create` until `close`. */
export class OutputDirCalls {
  private counted = false;

  constructor(private readonly path: string) {}

  async create(): Promise<void> {
    const alone = open === 0;
    open++;
    this.counted = true;
    try {
      await makeSharedDir(this.path, alone);
    } catch (err) {
      this.close();
      throw err;
    }
  }

  /** Removes the directory when it is empty; false when it holds anything (or is not there). */
  async removeIfEmpty(): Promise<boolean> {
    try {
      if (open === 1) rmdirSync(this.path);
      else await rmdir(this.path);
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    if (!this.counted) return;
    this.counted = false;
    open--;
  }
}
