import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { sleepyEcho } from '../support/container.js';
import { invocationFor } from '../support/env.js';
import { useRig } from '../support/rig.js';

describe('work that is interrupted', () => {
  // A fresh NATS per test: each one leaves work behind on purpose.
  const rig = useRig({ nats: true, container: sleepyEcho }, { each: true });

  it('runs again elsewhere when a drain aborts it, even though its poll window has passed', async () => {
    const first = await rig.startWorker({ env: { DRAIN_GRACE: '500ms', LOG_LEVEL: 'info' } });
    const replyTo = await rig.client.invoke(
      invocationFor(first.env, { pollSeconds: 1, headers: [['X-Sleep-Ms', '3500']] }),
      Buffer.from('again'),
    );
    await expect.poll(() => rig.container.seen.length).toBe(1);
    await sleep(2_500); // past the 1 s window and its 2 s grace
    await first.stop();
    await rig.startWorker({ env: { ...first.env, WORKER_ID: 'second' } });
    const result = await rig.client.result(replyTo, 20_000);
    expect(result.status).toBe(200);
    expect(result.body.toString()).toBe('again');
    expect(rig.container.seen).toHaveLength(2);
  });

  it('ends a stream that was cut off with an error instead of running it again', async () => {
    rig.container.route = async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
    };
    const worker = await rig.startWorker({ env: { DRAIN_GRACE: '300ms' } });
    const replyTo = await rig.client.invoke(invocationFor(worker.env, { headers: [['Accept', 'text/event-stream']] }));
    await expect.poll(() => rig.container.seen.length).toBe(1);
    await sleep(200);
    await worker.stop();
    const result = await rig.client.result(replyTo);
    expect(result.streamed).toBe(true);
    expect(result.body.toString()).toBe('data: one\n\n');
    expect(result.error).toMatch(/shutting down/);
    await rig.startWorker({ env: { ...worker.env, WORKER_ID: 'second' } });
    await sleep(1_000);
    expect(rig.container.seen).toHaveLength(1);
  });

  it('answers on the last delivery JetStream will make instead of handing the work back', async () => {
    const worker = await rig.startWorker({ env: { DRAIN_GRACE: '300ms', NATS_MAX_DELIVER: '1' } });
    const replyTo = await rig.client.invoke(invocationFor(worker.env, { headers: [['X-Sleep-Ms', '5000']] }));
    await expect.poll(() => rig.container.seen.length).toBe(1);
    await worker.stop();
    const result = await rig.client.result(replyTo);
    expect(result.status).toBe(503);
    expect(JSON.parse(result.body.toString()).detail).toMatch(/this was the last of 1 deliveries/);
  });

  it('does not let an unread container body hold the only connection', async () => {
    rig.container.route = (req, res) => {
      if (req.headers['x-big']) res.writeHead(200).end(Buffer.alloc(8 * 1024 * 1024));
      else res.writeHead(200).end('small');
    };
    const { env } = await rig.startWorker({ env: { MAX_REQUEST_CONCURRENCY: '1' } });
    for (let i = 0; i < 2; i++) {
      const big = await rig.client.result(
        await rig.client.invoke(invocationFor(env, { headers: [['X-Big', '1']], maxResponseSizeBytes: 1024 })),
      );
      expect(big.status).toBe(500);
    }
    const small = await rig.client.result(await rig.client.invoke(invocationFor(env)), 10_000);
    expect(small.body.toString()).toBe('small');
  });
});
