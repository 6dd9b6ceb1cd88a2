import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from '../../src/dev/nats-server.js';
import { TestContainer } from '../support/container.js';
import { startWorker, workerEnv, type RunningWorker } from '../support/env.js';
import { startGateway, waitForStatus, type RunningGateway } from '../support/gateway.js';
import { spawnSidecar } from '../support/process.js';

/** Runs examples/02-progress/server.py on a free port. */
async function startProgressExample(): Promise<{ child: ChildProcess; port: number }> {
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
  return { child, port };
}

describe('nvcf-sidecar invoke', () => {
  let nats: NatsServer;
  let example: { child: ChildProcess; port: number };
  let worker: RunningWorker;
  let gw: RunningGateway;
  let fid: string;

  beforeAll(async () => {
    nats = await NatsServer.start();
    example = await startProgressExample();
    worker = await startWorker(
      await workerEnv(nats.url, example.port, { INFERENCE_URL: '/generate', LOG_LEVEL: 'warn' }),
    );
    fid = worker.env.FUNCTION_ID!;
    gw = await startGateway(nats.url);
    await waitForStatus(gw.url, fid, worker.env.FUNCTION_VERSION_ID!, 'ACTIVE');
  });

  afterAll(async () => {
    await gw?.stop();
    await worker?.stop();
    example?.child.kill();
    await nats?.dispose();
  });

  it('follows a progress-writing function: shows the progress bar, then unpacks its outputs into --out', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'nvcf-invoke-out-')), 'result');
    const cli = spawnSidecar(['invoke', fid, '-d', '{"steps":4,"delay":0.7}', '--poll-seconds', '1', '--out', out], {
      NVCF_GATEWAY_URL: gw.url,
    });
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

  it("exits non-zero with the problem's detail when the call fails", async () => {
    const cli = spawnSidecar(['invoke', '00000000-0000-4000-8000-000000000000', '-d', '{}'], {
      NVCF_GATEWAY_URL: gw.url,
    });
    const exit = await cli.exit;
    expect(exit.code).toBe(1);
    expect(cli.stderr()).toContain('(HTTP 404)');
    expect(cli.stderr()).toContain('not found');
  });

  it('passes the container error detail through to the user', async () => {
    const cli = spawnSidecar(['invoke', fid, '-d', 'not json'], { NVCF_GATEWAY_URL: gw.url });
    const exit = await cli.exit;
    expect(exit.code).toBe(1);
    expect(cli.stderr()).toContain('the body must be JSON');
  });
});

describe('nvcf-sidecar invoke with assets and streams', () => {
  let nats: NatsServer;
  let container: TestContainer;
  let worker: RunningWorker;
  let gw: RunningGateway;

  beforeAll(async () => {
    nats = await NatsServer.start();
    container = await TestContainer.start(async (req, res) => {
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
    });
    worker = await startWorker(await workerEnv(nats.url, container.port, { LOG_LEVEL: 'warn' }));
    gw = await startGateway(nats.url);
    await waitForStatus(gw.url, worker.env.FUNCTION_ID!, worker.env.FUNCTION_VERSION_ID!, 'ACTIVE');
  });

  afterAll(async () => {
    await gw?.stop();
    await worker?.stop();
    await container?.close();
    await nats?.dispose();
  });

  it('uploads --asset files and references them, so the container reads them', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nvcf-invoke-asset-'));
    await writeFile(join(dir, 'a.txt'), 'first asset');
    await writeFile(join(dir, 'b.bin'), 'second asset');
    const cli = spawnSidecar(
      ['invoke', worker.env.FUNCTION_ID!, '-d', '{}', '--asset', join(dir, 'a.txt'), '--asset', join(dir, 'b.bin')],
      { NVCF_GATEWAY_URL: gw.url },
    );
    const exit = await cli.exit;
    expect(exit.code).toBe(0);
    expect(JSON.parse(cli.stdout()).assets).toEqual(['first asset', 'second asset']);
  });

  it('streams server-sent events to stdout', async () => {
    const cli = spawnSidecar(['invoke', worker.env.FUNCTION_ID!, '-d', '{}', '-H', 'Accept: text/event-stream'], {
      NVCF_GATEWAY_URL: gw.url,
    });
    const exit = await cli.exit;
    expect(exit.code).toBe(0);
    expect(cli.stdout()).toBe('data: one\n\ndata: two\n\ndata: three\n\n');
  });
});
