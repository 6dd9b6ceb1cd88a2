import { existsSync } from 'node:fs';
import { link, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/shared/log.js';
import { loadWorkerConfig } from '../../src/worker/config.js';
import { janitorFor } from '../../src/worker/janitor.js';
import { problemOf } from '../support/client.js';
import { gate, outputDirOf } from '../support/container.js';
import { invocationFor, largeResultInvocation } from '../support/env.js';
import { useRig } from '../support/rig.js';
import { readZip } from '../support/zip.js';

describe('a hostile container or publisher cannot reach past its own request', () => {
  const rig = useRig({ worker: { env: { MAX_REQUEST_CONCURRENCY: '4' } }, storage: true });

  const withLargeResult = () => largeResultInvocation(rig.worker.env, rig.storage);

  it('leaves a hard link to a file outside the output directory out of the zip, and reports it', async () => {
    const secretDir = await mkdtemp(join(tmpdir(), 'nvcf-secret-'));
    const secret = join(secretDir, 'shadow');
    await writeFile(secret, 'root:secret-hash:19000:0:99999:7:::\n');
    rig.container.route = async (req, res) => {
      await link(secret, join(outputDirOf(req), 'shadow'));
      await writeFile(join(outputDirOf(req), 'result.txt'), 'fine');
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    };
    const invocation = withLargeResult();
    const result = await rig.client.result(await rig.client.invoke(invocation), 30_000);
    expect(result.status).toBe(302);
    expect(result.manifest?.skipped).toEqual([{ name: 'shadow', reason: expect.stringMatching(/hard link/) }]);
    const zip = await readZip(rig.storage.path(`${invocation.requestId}.zip`));
    expect([...zip.keys()].sort()).toEqual([`${invocation.requestId}.response`, 'result.txt']);
  });

  it('removes what a container wrote beside its output directory once the janitor finds it stale', async () => {
    rig.container.route = async (req, res) => {
      await writeFile(join(outputDirOf(req), '..', `escape-${req.headers['nvcf-reqid'] as string}`), 'x');
      res.writeHead(200).end('ok');
    };
    const invocation = invocationFor(rig.worker.env);
    await rig.client.result(await rig.client.invoke(invocation), 30_000);
    const escaped = join(rig.worker.env.BASE_RESPONSE_DIR!, `escape-${invocation.requestId}`);
    expect(existsSync(escaped)).toBe(true);
    const config = loadWorkerConfig(rig.worker.env);
    await janitorFor(config, createLogger('silent')).sweep(Date.now() + 3 * 3_600_000);
    expect(existsSync(escaped)).toBe(false);
  });

  it('does not let a frame answer another live request through its reply subject, and terms it', async () => {
    const released = gate();
    rig.container.route = async (req, res) => {
      if (req.body.toString() === 'victim') await released.opened;
      res.writeHead(200, { 'content-type': 'text/plain' }).end(req.body);
    };
    const victim = invocationFor(rig.worker.env);
    const victimReply = await rig.client.invoke(victim, Buffer.from('victim'));
    while (!rig.container.seen.some((s) => s.body.toString() === 'victim')) await sleep(20);
    const attacker = invocationFor(rig.worker.env, { replyTo: victimReply });
    await rig.client.invoke(attacker, Buffer.from('injected'));
    // The attacker's frame is refused before it runs: its body never reaches the container.
    const deadline = Date.now() + 10_000;
    while (!rig.worker.logs.messages().some((m) => /reply subject does not belong/.test(m)) && Date.now() < deadline)
      await sleep(20);
    released.open();
    const result = await rig.client.result(victimReply, 30_000);
    expect(result.status).toBe(200);
    expect(result.body.toString()).toBe('victim');
    expect(rig.container.seen.some((s) => s.body.toString() === 'injected')).toBe(false);
    expect(rig.worker.logs.messages()).toContain('reply subject does not belong to the request; terminating it');
  });

  it('answers a container response with more headers than the protocol carries with a 502 naming the limit', async () => {
    rig.container.route = (_req, res) => {
      for (let i = 0; i < 300; i++) res.setHeader(`x-many-${i}`, String(i));
      res.writeHead(200, { 'content-type': 'text/plain' }).end('too many headers');
    };
    const result = await rig.client.result(await rig.client.invoke(invocationFor(rig.worker.env)), 30_000);
    expect(result.status).toBe(502);
    expect(String(problemOf(result.body).detail)).toMatch(/at most 256/);
  });

  it('answers a pass-through response with too many headers with the same 502', async () => {
    rig.container.route = (_req, res) => {
      for (let i = 0; i < 300; i++) res.setHeader(`x-many-${i}`, String(i));
      res.writeHead(200, { 'content-type': 'text/plain' }).end('too many headers');
    };
    const invocation = invocationFor(rig.worker.env, {
      headers: [['nvcf-feature-disable-worker-compatibility', 'true']],
    });
    const result = await rig.client.result(await rig.client.invoke(invocation), 30_000);
    expect(result.status).toBe(502);
    expect(String(problemOf(result.body).detail)).toMatch(/at most 256/);
  });
});
