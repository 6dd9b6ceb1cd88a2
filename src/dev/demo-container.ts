import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** examples/ sits next to src/ (tsx) and next to dist/ (built). */
function exampleFile(relative: string): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const candidate = join(dir, 'examples', relative);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`cannot find examples/${relative} next to the sidecar`);
}

/**
 * Starts the echo example on a free port and resolves with that port once it listens. It runs in
 * a process group of its own: a Ctrl-C at the terminal must not stop it while the worker still
 * drains requests through it; `dev` stops it afterwards.
 */
export async function startDemoContainer(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [exampleFile('01-echo/server.mjs')], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
  });
  const port = await new Promise<number>((resolve, reject) => {
    let seen = '';
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`the demo container exited with ${code} before it listened`)));
    child.stdout.on('data', (d: Buffer) => {
      seen += d.toString();
      const match = /listening on http:\/\/[^:]+:(\d+)/.exec(seen);
      if (match) resolve(Number(match[1]));
    });
  });
  return { child, port };
}
