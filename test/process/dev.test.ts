import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { DEV_FUNCTION_ID, DEV_VERSION_ID } from '../../src/dev/deploy.js';
import { echo } from '../support/container.js';
import { alive } from '../support/process.js';
import { useRig } from '../support/rig.js';

const run = promisify(execFile);

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
    // nats-server, the demo container and the worker beside it.
    expect(pids).toHaveLength(3);
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

/** The first address `dev` printed on a line that starts with `label`. */
function printed(dev: { lines: Record<string, unknown>[] }, label: string): string {
  return new RegExp(`^${label} +(\\S+)`, 'm').exec(dev.lines.map((l) => String(l.msg)).join('\n'))![1]!;
}

describe('nvcf-sidecar dev with your own running container', () => {
  const rig = useRig();

  it('deploys a worker beside the container at --inference-url, lists it as a deployment, and leaves the container running at Ctrl-C', async () => {
    const container = await rig.startContainer(echo);
    const endpoint = `http://127.0.0.1:${container.port}`;
    const dev = rig.spawnSidecar(
      ['dev', '--inference-url', `${endpoint}/infer`, '--health-path', '/v2/health/ready', '--port', '0'],
      {},
    );
    const curlLine = String((await dev.waitForLog((l) => String(l.msg).trim().startsWith('curl '), 45_000)).msg).trim();
    const workerPid = Number(/worker health .*\(pid (\d+)\)/.exec(dev.stdout())![1]);
    const { stdout } = await run('sh', ['-c', `${curlLine} -w '\\n%{http_code}'`]);
    expect(stdout.trim().split('\n')).toEqual(['{"hello":"world"}', '200']);
    expect(container.seen.map((r) => r.url)).toContain('/infer');

    const gateway = printed(dev, 'gateway');
    const { functions } = (await (await fetch(`${gateway}/v2/nvcf/functions`)).json()) as {
      functions: Record<string, unknown>[];
    };
    expect(functions).toEqual([
      expect.objectContaining({
        id: DEV_FUNCTION_ID,
        versionId: DEV_VERSION_ID,
        name: 'dev',
        status: 'ACTIVE',
        inferenceUrl: '/infer',
        localEndpoint: endpoint,
      }),
    ]);
    const deployment = (await (
      await fetch(`${gateway}/v2/nvcf/deployments/functions/${DEV_FUNCTION_ID}/versions/${DEV_VERSION_ID}`)
    ).json()) as { deployment: { instances: Record<string, unknown>[] } };
    // No container of its own: only the worker runs, calling yours.
    const [instance, ...more] = deployment.deployment.instances;
    expect(more).toEqual([]);
    expect(instance).toMatchObject({ state: 'ready', workerPid, port: container.port });
    expect(instance).not.toHaveProperty('containerPid');

    dev.child.kill('SIGINT');
    expect((await dev.exit).code).toBe(0);
    expect(alive(workerPid)).toBe(false);
    // The container is yours: dev did not start it, and leaves it running.
    expect((await fetch(`${endpoint}/v2/health/ready`)).status).toBe(200);
  });
});

describe('nvcf-sidecar dev on a NATS where another function has its id', () => {
  const rig = useRig({ gateway: true });

  it('refuses to take the fixed function id over, says why (409), and leaves the other function registered', async () => {
    const res = await fetch(`${rig.gateway.url}/v2/nvcf/functions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        id: DEV_FUNCTION_ID,
        name: 'someone-else',
        inferenceUrl: '/infer',
        localEndpoint: 'http://127.0.0.1:9',
      }),
    });
    expect(res.status).toBe(200);
    const dev = rig.spawnSidecar(['dev', '--demo', '--port', '0'], { NATS_URL: rig.natsUrl });
    expect((await dev.exit).code).toBe(1);
    expect(dev.stderr()).toContain('409');
    expect(dev.stderr()).toContain(`function ${DEV_FUNCTION_ID} is already registered as someone-else`);
    const { functions } = (await (await fetch(`${rig.gateway.url}/v2/nvcf/functions`)).json()) as {
      functions: Record<string, unknown>[];
    };
    expect(functions).toEqual([expect.objectContaining({ id: DEV_FUNCTION_ID, name: 'someone-else' })]);
  });
});
