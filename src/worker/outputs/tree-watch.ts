import { watch, type FSWatcher } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** A hostile container could make directories without end; past this many, the final scan still finds their files. */
const MAX_WATCHED_DIRS = 1_000;
const MAX_INSPECTING = 32;

/**
 * Native change notifications (inotify on Linux) for one directory tree: one kernel watch per
 * directory, added as directories appear, and a callback for every regular-or-not file that
 * is created, renamed into place or written. Links are reported, never followed. It replaces a
 * general-purpose watcher that cost ten times as much per request (see docs/performance.md).
 */
export class TreeWatcher {
  private readonly watchers = new Map<string, FSWatcher>();
  private closed = false;
  private inspecting = 0;
  private readonly backlog: string[] = [];
  /** Paths waiting for or under a look. */
  private readonly queued = new Set<string>();

  /**
   * `onFile` hears every path that is not a directory; `known` may say a path needs no second
   * look (a file already handled), which spares a stat per event when files come by the thousand.
   */
  constructor(
    private readonly onFile: (path: string) => void,
    private readonly known: (path: string) => boolean = () => false,
  ) {}

  /**
   * Starts watching a directory that may already hold files (the watch starts late, see
   * output-dir.ts): the watch first, then a look at what is there, so nothing falls between.
   */
  watchTree(dir: string): void {
    this.watchDir(dir);
    void this.lookInside(dir);
  }

  /** Starts watching `dir` (synchronously: the watch is in place when this returns). */
  watchDir(dir: string): void {
    if (this.closed || this.watchers.has(dir) || this.watchers.size >= MAX_WATCHED_DIRS) return;
    let watcher: FSWatcher;
    try {
      watcher = watch(dir, { persistent: false }, (_event, name) => {
        if (name) this.consider(join(dir, name.toString()));
      });
    } catch {
      return; // Gone already: nothing left to see in it.
    }
    watcher.on('error', () => {
      watcher.close();
      this.watchers.delete(dir);
    });
    this.watchers.set(dir, watcher);
  }

  close(): void {
    this.closed = true;
    this.backlog.length = 0;
    this.queued.clear();
    for (const watcher of this.watchers.values()) watcher.close();
    this.watchers.clear();
  }

  /**
   * A file being written raises several events at once: one look is enough. (What a look misses,
   * such as a file swapped for a directory meanwhile, the final scan of the directory still finds.)
   */
  private consider(path: string): void {
    if (this.queued.has(path) || this.known(path)) return;
    this.queued.add(path);
    void this.inspect(path);
  }

  /** Events can come by the hundred thousand: look at a bounded number of paths at a time. */
  private async inspect(path: string): Promise<void> {
    if (this.inspecting >= MAX_INSPECTING) {
      this.backlog.push(path);
      return;
    }
    this.inspecting++;
    try {
      await this.look(path);
    } finally {
      this.queued.delete(path);
      this.inspecting--;
      const next = this.backlog.shift();
      if (next !== undefined && !this.closed) void this.inspect(next);
    }
  }

  private async look(path: string): Promise<void> {
    const stats = await lstat(path).catch(() => undefined);
    if (!stats || this.closed) return;
    if (!stats.isDirectory()) return this.onFile(path);
    this.watchDir(path);
    await this.lookInside(path);
  }

  /** Files made before the watch on their directory existed have raised no event of their own. */
  private async lookInside(dir: string): Promise<void> {
    const names = await readdir(dir).catch(() => [] as string[]);
    if (!this.closed) for (const name of names) this.consider(join(dir, name));
  }
}
