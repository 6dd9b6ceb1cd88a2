import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));

export interface TerminalSession {
  /** Every byte the program wrote to the terminal, escape sequences included. */
  raw: () => string;
  /** What a person would see: the output rendered as a terminal renders it (see `screen`). */
  screen: () => string[];
  /** Types keys, as a person would: '\x03' is Ctrl-C (the terminal signals the foreground group). */
  type: (keys: string) => void;
  waitFor: (pattern: RegExp, timeoutMs?: number) => Promise<RegExpExecArray>;
  exit: Promise<number | null>;
  kill: () => void;
}

/**
 * Runs a shell command on a real pseudo-terminal, through util-linux `script` (Debian:
 * bsdutils), so the program sees a TTY on stdin, stdout and stderr exactly as in a terminal
 * window, and Ctrl-C typed into it reaches the whole foreground process group.
 */
export function runInTerminal(command: string, env: Record<string, string> = {}): TerminalSession {
  // `exec`: the command itself is the terminal's foreground job, as when typed at a prompt (a
  // non-interactive sh left in between would die of the Ctrl-C itself).
  const child = spawn('script', ['-qfec', `exec ${command}`, '/dev/null'], {
    cwd: root,
    env: {
      PATH: `${process.env.PATH ?? ''}:/usr/sbin`,
      HOME: process.env.HOME ?? '/root',
      SHELL: '/bin/sh',
      TERM: 'xterm',
      ...env,
    },
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  const waiters = new Set<() => void>();
  const collect = (d: Buffer) => {
    out += d.toString();
    for (const w of waiters) w();
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    raw: () => out,
    screen: () => screen(out),
    type: (keys) => child.stdin.write(keys),
    waitFor(pattern, timeoutMs = 45_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const match = pattern.exec(screen(out).join('\n'));
          if (!match) return;
          done();
          resolve(match);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`${pattern} not seen in ${timeoutMs} ms; the terminal shows:\n${screen(out).join('\n')}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
    exit,
    kill: () => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // Already gone.
      }
    },
  };
}

/**
 * Renders terminal output into the lines left on screen: `\r` returns to the start of the line,
 * `ESC[K` erases to its end, `ESC[2K` erases the line, `ESC[nG` moves to column n, `\n` starts
 * a new line; other escape sequences (colours) are dropped. Enough for what a CLI writes.
 */
function screen(raw: string): string[] {
  const lines: string[] = [''];
  let col = 0;
  const put = (text: string) => {
    const line = lines[lines.length - 1]!.padEnd(col, ' ');
    lines[lines.length - 1] = line.slice(0, col) + text + line.slice(col + text.length);
    col += text.length;
  };
  const tokens = raw.match(/\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]|\r|\n|[^\x1b\r\n]+|\x1b/g) ?? [];
  for (const token of tokens) {
    if (token === '\n') {
      lines.push('');
      col = 0;
    } else if (token === '\r') col = 0;
    else if (token.startsWith('\x1b[')) {
      const final = token.at(-1)!;
      const arg = token.slice(2, -1);
      const current = lines[lines.length - 1]!;
      if (final === 'K' && (arg === '' || arg === '0')) lines[lines.length - 1] = current.slice(0, col);
      else if (final === 'K' && arg === '2') lines[lines.length - 1] = '';
      else if (final === 'G') col = Math.max(0, Number(arg || '1') - 1);
    } else if (!token.startsWith('\x1b')) put(token);
  }
  return lines.map((l) => l.trimEnd());
}
