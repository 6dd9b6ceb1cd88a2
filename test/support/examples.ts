import { spawn } from 'node:child_process';
import type { ExternalContainer } from './rig-options.js';

/** Runs examples/02-progress/server.py on a free port, as a rig's container. */
export async function startProgressExample(): Promise<ExternalContainer> {
  const child = spawn('python3', ['examples/02-progress/server.py'], {
    env: { ...process.env, PORT: '0' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.stdout.on('data', (d: Buffer) => {
      const match = /listening on http:\/\/[^:]+:(\d+)/.exec(d.toString());
      if (match) resolve(Number(match[1]));
    });
  });
  return { port, close: () => void child.kill() };
}
