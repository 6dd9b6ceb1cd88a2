import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LogLines } from './log-lines.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface WorkerProcess {
  child: ChildProcess;
  lines: Record<string, unknown>[];
  stderr: () => string;
  /** Everything written to stdout, raw (for commands whose output is not log lines). */
  stdout: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  waitForLog(match: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** Starts `nvcf-sidecar <args>` as a real child process, the way a pod would. */
export function spawnSidecar(args: string[], env: Record<string, string>): WorkerProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  const log: LogLines = new LogLines((): string => `last lines: ${JSON.stringify(log.lines.slice(-5))} stderr: ${err}`);
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    log.push(d.toString());
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    lines: log.lines,
    stderr: () => err,
    stdout: () => out,
    exit,
    waitForLog: (match, timeoutMs = 20_000) => log.waitFor(match, timeoutMs),
  };
}

export const isState = (to: string) => (line: Record<string, unknown>) => line.msg === 'worker state' && line.to === to;

/** Whether a process with this id still exists (a zombie counts until it is reaped). */
export function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
