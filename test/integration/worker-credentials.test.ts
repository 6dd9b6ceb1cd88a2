import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { invocationFor } from '../support/env.js';
import { startRig } from '../support/rig.js';

const USER = 'sidecar';
const PASSWORD = 'secret-pw-4f7d2a9c';

/** A nats-server that only lets in USER/PASSWORD: the launcher of the dev command has no auth. */
async function natsWithPassword(): Promise<{ url: string; child: ChildProcess }> {
  const dir = await mkdtemp(join(tmpdir(), 'nvcf-nats-auth-'));
  const args = ['-js', '-a', '127.0.0.1', '-p', '-1', '-sd', join(dir, 'store'), '--ports_file_dir', dir];
  const child = spawn('nats-server', [...args, '--user', USER, '--pass', PASSWORD], { stdio: 'ignore' });
  for (let i = 0; i < 500; i++) {
    const file = (await readdir(dir)).find((f) => f.endsWith('.ports'));
    if (file) {
      const ports = JSON.parse(await readFile(join(dir, file), 'utf8')) as { nats: string[] };
      return { url: `nats://127.0.0.1:${new URL(ports.nats[0]!).port}`, child };
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  child.kill('SIGKILL');
  throw new Error('nats-server with auth did not start');
}

describe("the worker's NATS credentials", () => {
  let nats: { url: string; child: ChildProcess };
  beforeAll(async () => {
    nats = await natsWithPassword();
  });
  afterAll(() => {
    nats?.child.kill('SIGTERM');
  });

  it('appear in no message of any stream or bucket after a request ran', async () => {
    const rig = await startRig({
      nats: { url: nats.url },
      client: { user: USER, pass: PASSWORD },
      worker: { env: { NATS_USER: USER, NATS_PASSWORD: PASSWORD } },
    });
    try {
      const result = await rig.client.result(
        await rig.client.invoke(invocationFor(rig.worker.env), Buffer.from('hello')),
      );
      expect(result.status).toBe(200);

      const jsm = await rig.nc.jetstreamManager();
      const streams = await jsm.streams.list().next();
      expect(streams.map((s) => s.config.name)).toContain('KV_nvcf_workers');
      let scanned = 0;
      for (const info of streams) {
        const { first_seq, last_seq } = (await jsm.streams.info(info.config.name)).state;
        for (let seq = first_seq; seq > 0 && seq <= last_seq; seq++) {
          const message = await jsm.streams.getMessage(info.config.name, { seq }).catch(() => undefined);
          if (!message) continue;
          scanned++;
          const headers = message.header
            ? message.header.keys().map((key) => `${key}: ${message.header.values(key).join(',')}`)
            : [];
          const text = [Buffer.from(message.data).toString('latin1'), message.subject, ...headers].join('\n');
          expect(text, `${info.config.name} #${seq}`).not.toContain(PASSWORD);
          expect(text, `${info.config.name} #${seq}`).not.toContain(`"user":"${USER}"`);
        }
      }
      expect(scanned).toBeGreaterThan(0);
    } finally {
      await rig.dispose();
    }
  });
});
