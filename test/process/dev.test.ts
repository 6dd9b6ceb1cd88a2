import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DEV_FUNCTION_ID, DEV_VERSION_ID } from '../../src/dev/command.js';
import { useRig } from '../support/rig.js';

const run = promisify(execFile);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('nvcf-sidecar dev --demo', () => {
  // Nothing but the command under test, which must start its own NATS; the rig kills what is left.
  const rig = useRig();

  it('starts NATS, the gateway, a worker and the demo container; the printed curl line gets a 200; Ctrl-C leaves nothing running', async () => {
    // No NATS_URL: dev must start its own nats-server.
    const dev = rig.spawnSidecar(['dev', '--demo', '--port', '0'], {});
    const curlLine = String((await dev.waitForLog((l) => String(l.msg).trim().startsWith('curl '), 30_000)).msg).trim();
    const pids = dev.lines
      .map((l) => /\(pid (\d+)/.exec(String(l.msg))?.[1])
      .filter(Boolean)
      .map(Number);
    expect(pids).toHaveLength(2);
    const { stdout } = await run('sh', ['-c', `${curlLine} -w '\\n%{http_code}'`]);
    const [body, code] = stdout.trim().split('\n');
    expect(code).toBe('200');
    expect(JSON.parse(body!)).toEqual({ hello: 'world' });
    dev.child.kill('SIGINT');
    const exit = await dev.exit;
    expect(exit.code).toBe(0);
    for (const pid of pids) expect(alive(pid)).toBe(false);
  });

  it('lists its function in GET /v2/nvcf/functions as ACTIVE, under its fixed ids', async () => {
    const dev = rig.spawnSidecar(['dev', '--demo', '--port', '0'], {});
    await dev.waitForLog((l) => String(l.msg).startsWith('ready.'), 30_000);
    const gateway = /^gateway +(\S+)/m.exec(dev.lines.map((l) => String(l.msg)).join('\n'))![1]!;
    const res = await fetch(`${gateway}/v2/nvcf/functions`);
    expect(res.status).toBe(200);
    const { functions } = (await res.json()) as {
      functions: { id: string; versionId: string; name: string; status: string }[];
    };
    expect(functions).toContainEqual(
      expect.objectContaining({ id: DEV_FUNCTION_ID, versionId: DEV_VERSION_ID, name: 'echo-demo', status: 'ACTIVE' }),
    );
    dev.child.kill('SIGINT');
    expect((await dev.exit).code).toBe(0);
  });

  it('says how to get nats-server when it is not on PATH', async () => {
    const dev = rig.spawnSidecar(['dev', '--demo', '--port', '0'], { PATH: '/nonexistent' });
    const exit = await dev.exit;
    expect(exit.code).toBe(1);
    expect(dev.stderr()).toContain('nats-server is not on PATH');
    expect(dev.stderr()).toContain('NATS_URL');
  });
});
