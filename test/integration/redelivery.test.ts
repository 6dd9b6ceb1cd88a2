import type { NatsConnection } from 'nats';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ProtocolClient } from '../../src/gateway/protocol-client.js';
import { NatsServer } from '../../src/dev/nats-server.js';
import { TestContainer } from '../support/container.js';
import { clientFor, invocationFor, startWorker, workerEnv, type RunningWorker } from '../support/env.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('work that is interrupted', () => {
  let nats: NatsServer;
  let container: TestContainer;
  let nc: NatsConnection;
  let client: ProtocolClient;
  const workers: RunningWorker[] = [];

  beforeEach(async () => {
    nats = await NatsServer.start();
    container = await TestContainer.start(async (req, res) => {
      await sleep(Number(req.headers['x-sleep-ms'] ?? 0));
      res.writeHead(200).end(req.body);
    });
    ({ nc, client } = await clientFor(nats.url));
  });
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop();
    await nc?.close();
    await container?.close();
    await nats?.dispose();
  });

  async function start(env: Record<string, string>) {
    const worker = await startWorker(env);
    workers.push(worker);
    return worker;
  }

  it('runs again elsewhere when a drain aborts it, even though its poll window has passed', async () => {
    const env = await workerEnv(nats.url, container.port, { DRAIN_GRACE: '500ms', LOG_LEVEL: 'info' });
    const first = await start(env);
    const replyTo = await client.invoke(
      invocationFor(env, { pollSeconds: 1, headers: [['X-Sleep-Ms', '3500']] }),
      Buffer.from('again'),
    );
    await expect.poll(() => container.seen.length).toBe(1);
    await sleep(2_500); // past the 1 s window and its 2 s grace
    await first.stop();
    await start({ ...env, WORKER_ID: 'second' });
    const result = await client.result(replyTo, 20_000);
    expect(result.status).toBe(200);
    expect(result.body.toString()).toBe('again');
    expect(container.seen).toHaveLength(2);
  });

  it('ends a stream that was cut off with an error instead of running it again', async () => {
    container.route = async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
    };
    const env = await workerEnv(nats.url, container.port, { DRAIN_GRACE: '300ms' });
    const worker = await start(env);
    const replyTo = await client.invoke(invocationFor(env, { headers: [['Accept', 'text/event-stream']] }));
    await expect.poll(() => container.seen.length).toBe(1);
    await sleep(200);
    await worker.stop();
    const result = await client.result(replyTo);
    expect(result.streamed).toBe(true);
    expect(result.body.toString()).toBe('data: one\n\n');
    expect(result.error).toMatch(/shutting down/);
    await start({ ...env, WORKER_ID: 'second' });
    await sleep(1_000);
    expect(container.seen).toHaveLength(1);
  });

  it('answers on the last delivery JetStream will make instead of handing the work back', async () => {
    const env = await workerEnv(nats.url, container.port, { DRAIN_GRACE: '300ms', NATS_MAX_DELIVER: '1' });
    const worker = await start(env);
    const replyTo = await client.invoke(invocationFor(env, { headers: [['X-Sleep-Ms', '5000']] }));
    await expect.poll(() => container.seen.length).toBe(1);
    await worker.stop();
    const result = await client.result(replyTo);
    expect(result.status).toBe(503);
    expect(JSON.parse(result.body.toString()).detail).toMatch(/this was the last of 1 deliveries/);
  });

  it('does not let an unread container body hold the only connection', async () => {
    container.route = (req, res) => {
      if (req.headers['x-big']) res.writeHead(200).end(Buffer.alloc(8 * 1024 * 1024));
      else res.writeHead(200).end('small');
    };
    const env = await workerEnv(nats.url, container.port, { MAX_REQUEST_CONCURRENCY: '1' });
    await start(env);
    for (let i = 0; i < 2; i++) {
      const big = await client.result(
        await client.invoke(invocationFor(env, { headers: [['X-Big', '1']], maxResponseSizeBytes: 1024 })),
      );
      expect(big.status).toBe(500);
    }
    const small = await client.result(await client.invoke(invocationFor(env)), 10_000);
    expect(small.body.toString()).toBe('small');
  });
});
