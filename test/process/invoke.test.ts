import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deployFunction, registerFunction, undeployFunction } from '../../src/gateway/lifecycle/client.js';
import { startProgressExample } from '../support/examples.js';
import { closedPort } from '../support/http.js';
import { waitUntilActive } from '../support/lifecycle.js';
import { useRig } from '../support/rig.js';

describe('nvcf-sidecar invoke', () => {
  const rig = useRig({
    container: { start: startProgressExample },
    worker: { env: { INFERENCE_URL: '/generate', LOG_LEVEL: 'warn' } },
    gateway: { awaitStatus: 'ACTIVE' },
  });

  it('follows a progress-writing function: shows the progress bar, then unpacks its outputs into --out', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'nvcf-invoke-out-')), 'result');
    const cli = rig.spawnSidecar(
      ['invoke', rig.worker.env.FUNCTION_ID!, '-d', '{"steps":4,"delay":0.7}', '--poll-seconds', '1', '--out', out],
      { NVCF_GATEWAY_URL: rig.gateway.url },
    );
    const exit = await cli.exit;
    expect(cli.stderr()).toMatch(/\[#*\.*\] +\d+%/);
    expect(exit.code).toBe(0);
    const files = (await readdir(out)).sort();
    expect(files.filter((f) => f.startsWith('step-'))).toEqual([
      'step-001.txt',
      'step-002.txt',
      'step-003.txt',
      'step-004.txt',
    ]);
    expect(files.some((f) => f.endsWith('.partial'))).toBe(false);
    expect(await readFile(join(out, 'step-004.txt'), 'utf8')).toBe('output of step 4 of 4\n');
    const response = files.find((f) => f.endsWith('.response'))!;
    expect(JSON.parse(await readFile(join(out, response), 'utf8'))).toEqual({
      outputs: ['step-001.txt', 'step-002.txt', 'step-003.txt', 'step-004.txt'],
    });
  });

  it("uploads the example's result once: its progress file's temporary name is never shipped", async () => {
    // Many quick progress writes: each is a chance for the watcher to find the temporary file.
    const out = join(await mkdtemp(join(tmpdir(), 'nvcf-invoke-once-')), 'result');
    const cli = rig.spawnSidecar(
      ['invoke', rig.worker.env.FUNCTION_ID!, '-d', '{"steps":100,"delay":0.01}', '--out', out],
      {
        NVCF_GATEWAY_URL: rig.gateway.url,
      },
    );
    expect((await cli.exit).code).toBe(0);
    expect((await readdir(out)).filter((f) => !f.startsWith('step-') && !f.endsWith('.response'))).toEqual([]);
    const requestId = /^request ([0-9a-f-]{36})$/m.exec(cli.stderr())![1]!;
    const gateway = rig.gateway.logs.lines.filter((l) => JSON.stringify(l).includes(requestId)).map((l) => l.msg);
    expect(gateway).toContain('large result stored');
    // A shipped file gone by the end makes the worker drop the upload it started and send the zip again.
    expect(gateway).not.toContain('upload broken off by its sender; nothing stored');
  });

  it("exits non-zero with the problem's detail when the call fails", async () => {
    const cli = rig.spawnSidecar(['invoke', '00000000-0000-4000-8000-000000000000', '-d', '{}'], {
      NVCF_GATEWAY_URL: rig.gateway.url,
    });
    const exit = await cli.exit;
    expect(exit.code).toBe(1);
    expect(cli.stderr()).toContain('(HTTP 404)');
    expect(cli.stderr()).toContain('not found');
  });

  it('passes the container error detail through to the user', async () => {
    const cli = rig.spawnSidecar(['invoke', rig.worker.env.FUNCTION_ID!, '-d', 'not json'], {
      NVCF_GATEWAY_URL: rig.gateway.url,
    });
    const exit = await cli.exit;
    expect(exit.code).toBe(1);
    expect(cli.stderr()).toContain('the body must be JSON');
  });

  it('exits 1 saying the result cannot be unpacked when its zip is broken, not that the gateway is unreachable', async () => {
    const requestId = '0e6e1000-0000-4000-8000-000000000001';
    // A gateway that answers with a 302 to bytes that are no zip at all.
    const gateway = await rig.serve((req, res) => {
      if (req.url === '/result.zip') return void res.writeHead(200).end('not a zip');
      res.writeHead(302, { location: `http://127.0.0.1:${gateway.port}/result.zip`, 'nvcf-reqid': requestId }).end();
    });
    const out = join(await mkdtemp(join(tmpdir(), 'nvcf-invoke-broken-')), 'out');
    const cli = rig.spawnSidecar(['invoke', 'fid', '--gateway', `http://127.0.0.1:${gateway.port}`, '--out', out], {});
    const exit = await cli.exit;
    expect(exit.code).toBe(1);
    expect(cli.stderr()).toContain(`cannot unpack the result of ${requestId}:`);
    expect(cli.stderr()).not.toContain('cannot reach the gateway');
  });
});

describe('nvcf-sidecar invoke with assets and streams', () => {
  const rig = useRig({
    container: async (req, res) => {
      if (String(req.headers.accept).includes('text/event-stream')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const word of ['one', 'two', 'three']) res.write(`data: ${word}\n\n`);
        res.end();
        return;
      }
      const ids = String(req.headers['nvcf-function-asset-ids'] ?? '')
        .split(',')
        .filter(Boolean);
      const dir = String(req.headers['nvcf-asset-dir']);
      const assets = await Promise.all(ids.map(async (id) => (await readFile(join(dir, id))).toString()));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ assets }));
    },
    worker: { env: { LOG_LEVEL: 'warn' } },
    gateway: { awaitStatus: 'ACTIVE' },
  });

  it('uploads --asset files and references them, so the container reads them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nvcf-invoke-asset-'));
    await writeFile(join(dir, 'a.txt'), 'first asset');
    await writeFile(join(dir, 'b.bin'), 'second asset');
    const cli = rig.spawnSidecar(
      ['invoke', rig.worker.env.FUNCTION_ID!, '-d', '{}', '--asset', join(dir, 'a.txt'), '--asset', join(dir, 'b.bin')],
      { NVCF_GATEWAY_URL: rig.gateway.url },
    );
    const exit = await cli.exit;
    expect(exit.code).toBe(0);
    expect(JSON.parse(cli.stdout()).assets).toEqual(['first asset', 'second asset']);
  });

  it('streams server-sent events to stdout', async () => {
    const cli = rig.spawnSidecar(
      ['invoke', rig.worker.env.FUNCTION_ID!, '-d', '{}', '-H', 'Accept: text/event-stream'],
      { NVCF_GATEWAY_URL: rig.gateway.url },
    );
    const exit = await cli.exit;
    expect(exit.code).toBe(0);
    expect(cli.stdout()).toBe('data: one\n\ndata: two\n\ndata: three\n\n');
  });
});

describe('nvcf-sidecar invoke --list', () => {
  const rig = useRig({ gateway: true });

  it('lists a function deployed through the lifecycle API as ACTIVE, with its id, version and name', async () => {
    const target = { url: rig.gateway.url };
    // The echo example stands in for the container; the harness gives it INFERENCE_PORT.
    const registered = await registerFunction(target, {
      name: 'listed-echo',
      inferenceUrl: '/echo',
      localCommand: ['sh', '-c', `PORT=$INFERENCE_PORT exec ${process.execPath} examples/01-echo/server.mjs`],
    });
    await deployFunction(target, registered);
    // Starting a worker under tsx takes seconds, far longer on a loaded machine: the bound only stops a hung test.
    await waitUntilActive(target, registered, 150_000);

    const cli = rig.spawnSidecar(['invoke', '--list'], { NVCF_GATEWAY_URL: rig.gateway.url });
    const exit = await cli.exit;
    expect(exit.code).toBe(0);
    const lines = cli.stdout().trimEnd().split('\n');
    expect(lines[0]).toMatch(/^FUNCTION ID +VERSION ID +NAME +STATUS$/);
    const row = lines.find((line) => line.startsWith(registered.id));
    expect(row?.split(/ +/)).toEqual([registered.id, registered.versionId, 'listed-echo', 'ACTIVE']);

    await undeployFunction(target, registered);
  }, 180_000);

  it('exits 1 with the cause when the gateway cannot be reached', async () => {
    const port = await closedPort();
    const cli = rig.spawnSidecar(['invoke', '--list', '--gateway', `http://127.0.0.1:${port}`], {});
    const exit = await cli.exit;
    expect(exit.code).toBe(1);
    expect(cli.stderr()).toContain(`cannot reach the gateway at http://127.0.0.1:${port}: ECONNREFUSED`);
  });
});
