import type { ChildProcess } from 'node:child_process';

export type LogLine = Record<string, unknown>;

/**
 * A child process's stdout read as JSON log lines (a line that is not JSON is kept as `msg`),
 * with waits for the first line that matches. Shared by the tests and the benchmark, which both
 * start real processes and wait for them to say they are ready.
 */
export class LogLines {
  readonly lines: LogLine[] = [];
  private partial = '';
  private readonly waiters = new Set<() => void>();

  constructor(private readonly describe: () => string) {}

  push(chunk: string): void {
    this.partial += chunk;
    const complete = this.partial.split('\n');
    this.partial = complete.pop()!;
    for (const line of complete) {
      try {
        this.lines.push(JSON.parse(line) as LogLine);
      } catch {
        this.lines.push({ msg: line });
      }
    }
    for (const wake of this.waiters) wake();
  }

  /** Resolves with the first line that matches; rejects after `timeoutMs`, or when `child` exits first if given. */
  waitFor(match: (line: LogLine) => boolean, timeoutMs: number, child?: ChildProcess): Promise<LogLine> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const found = this.lines.find(match);
        if (!found) return;
        cleanup();
        resolve(found);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`log line not seen in ${timeoutMs} ms; ${this.describe()}`));
      }, timeoutMs);
      const onExit = () => {
        cleanup();
        reject(new Error(`the process exited before the line was seen; ${this.describe()}`));
      };
      child?.once('exit', onExit);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
        child?.off('exit', onExit);
      };
      this.waiters.add(check);
      check();
    });
  }
}
