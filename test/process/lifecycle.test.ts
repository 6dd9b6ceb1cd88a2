import { readFile } from 'node:fs/promises';
import type { NatsConnection } from 'nats';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ProtocolClient } from '../../src/gateway/protocol-client.js';
import { NatsServer } from '../../src/dev/nats-server.js';
import { TestContainer } from '../support/container.js';
import { clientFor, invocationFor, workerEnv } from '../support/env.js';
import { isState, spawnSidecar, type WorkerProcess } from '../support/process.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the worker process', () => {
  let nats: NatsServer;
  let container: TestContainer;
  let nc: NatsConnection;
  let client: ProtocolClient;
  const spawned: WorkerProcess[] = [];

  beforeEach(async () => {
    nats = await NatsServer.start();
    container = await TestContainer.start(async (req, res) => {
      await sleep(Number(req.headers['x-sleep-ms'] ?? 0));
      res.writeHead(200).end(req.body);
    });
    ({ nc, client } = await clientFor(nats.url));
  });

  afterEach(async () => {
    for (const p of spawned.splice(0)) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await nc?.close();
    await container?.close();
    await nats?.dispose();
  });

  function start(env: Record<string, string>): WorkerProcess {
    const p = spawnSidecar(['worker'], env);
    spawned.push(p);
    return p;
  }

  it('hands a request to a second worker after the first is killed with SIGKILL, and the caller sees one final', async () => {
    const env = await workerEnv(nats.url, container.port, { NATS_ACK_WAIT: '2s', LOG_LEVEL: 'info' });
    const first = start(env);
    await first.waitForLog(isState('running'));
    const invocation = invocationFor(env, { headers: [['X-Sleep-Ms', '1500']] });
    const replyTo = await client.invoke(invocation, Buffer.from('survives'));
    await expect.poll(() => container.seen.length).toBe(1);
    first.child.kill('SIGKILL');
    await first.exit;
    const second = start({ ...env, WORKER_ID: 'second' });
    const result = await client.result(replyTo, 30_000);
    expect(result.body.toString()).toBe('survives');
    expect(container.seen).toHaveLength(2);
    // Read the whole response history of the request: exactly one final, from the second worker.
    await sleep(500);
    const finals = [];
    for await (const frame of client.responses(replyTo, AbortSignal.timeout(1_000)))
      if (frame.meta.kind === 'final') finals.push(frame.meta);
    expect(finals).toHaveLength(1);
    expect(finals[0]).toMatchObject({ workerId: 'second', attempt: 2 });
    second.child.kill('SIGTERM');
    expect((await second.exit).code).toBe(0);
  });

  it('on SIGTERM finishes the running request, exits 0, and gives queued work back at once', async () => {
    const env = await workerEnv(nats.url, container.port, {
      MAX_REQUEST_CONCURRENCY: '2',
      NATS_ACK_WAIT: '60s',
      LOG_LEVEL: 'info',
    });
    const first = start(env);
    await first.waitForLog(isState('running'));
    const slow = await client.invoke(
      invocationFor(env, { headers: [['X-Sleep-Ms', '1500']] }),
      Buffer.from('in flight'),
    );
    await expect.poll(() => container.seen.length).toBe(1);
    first.child.kill('SIGTERM');
    await first.waitForLog(isState('draining'));
    // Published while the first worker drains: its open pull request may take some, and must hand them back.
    const queued = await Promise.all(
      [1, 2, 3].map((i) => client.invoke(invocationFor(env), Buffer.from(`queued ${i}`))),
    );
    const inFlight = await client.result(slow);
    expect(inFlight.body.toString()).toBe('in flight');
    expect((await first.exit).code).toBe(0);
    const report = await first.waitForLog((l) => l.msg === 'drained; exiting');
    expect(report).toMatchObject({ finished: 1, aborted: 0 });

    const second = start({ ...env, WORKER_ID: 'second' });
    // Well inside the 60 s ack wait: nothing is stuck with the worker that left.
    const results = await Promise.all(queued.map((r) => client.result(r, 15_000)));
    expect(results.map((r) => r.body.toString())).toEqual(['queued 1', 'queued 2', 'queued 3']);
    second.child.kill('SIGTERM');
    expect((await second.exit).code).toBe(0);
  });

  it('exits 1 at once on a second SIGTERM', async () => {
    const env = await workerEnv(nats.url, container.port, { LOG_LEVEL: 'info' });
    const worker = start(env);
    await worker.waitForLog(isState('running'));
    await client.invoke(invocationFor(env, { headers: [['X-Sleep-Ms', '30000']] }));
    await expect.poll(() => container.seen.length).toBe(1);
    worker.child.kill('SIGTERM');
    await worker.waitForLog(isState('draining'));
    worker.child.kill('SIGTERM');
    expect((await worker.exit).code).toBe(1);
  });

  it('exits 1 with a termination message when the container never becomes healthy', async () => {
    container.healthStatus = 503;
    const env = await workerEnv(nats.url, container.port, { INFERENCE_READY_TIMEOUT: '1s', LOG_LEVEL: 'info' });
    const worker = start(env);
    expect((await worker.exit).code).toBe(1);
    const written = JSON.parse((await readFile(env.TERMINATION_LOG_PATH!, 'utf8')).trim());
    expect(written).toEqual({
      message: expect.stringMatching(/did not become healthy within 1s: health endpoint answered 503, expected 200/),
      isInternal: false,
    });
  });

  it('stops at once on SIGTERM while NATS cannot be reached', async () => {
    const env = await workerEnv('nats://127.0.0.1:1', container.port, { LOG_LEVEL: 'info' });
    const worker = start(env);
    await worker.waitForLog((l) => l.msg === 'admin listening');
    worker.child.kill('SIGTERM');
    expect((await worker.exit).code).toBe(0);
    expect(worker.lines.some((l) => l.msg === 'stopped before NATS could be reached')).toBe(true);
  });

  it('refuses a bad configuration before connecting, naming the variable', async () => {
    const env = await workerEnv('nats://127.0.0.1:1', container.port, {
      MAX_REQUEST_CONCURRENCY: 'four',
      FUNCTION_ID: 'not-a-uuid',
    });
    const worker = start(env);
    expect((await worker.exit).code).toBe(2);
    expect(worker.stderr()).toMatch(/MAX_REQUEST_CONCURRENCY is "four"/);
    expect(worker.stderr()).toMatch(/FUNCTION_ID is "not-a-uuid": must be the function id \(a UUID\)/);
    expect(worker.lines.filter((l) => l.msg === 'connected to NATS')).toHaveLength(0);
  });
});
