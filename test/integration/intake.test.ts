import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { streams } from '../../src/shared/protocol.js';
import { encodeFrame } from '../../src/shared/frame-codec.js';
import { echo } from '../support/container.js';
import { invocationFor } from '../support/env.js';
import { useRig } from '../support/rig.js';

describe('taking work from the queue', () => {
  // Each test brings its own container and worker to a fresh NATS.
  const rig = useRig({ nats: true }, { each: true });

  async function consumerInfo() {
    const jsm = await rig.nc.jetstreamManager();
    return jsm.consumers.info(streams.work(rig.worker.env.FUNCTION_VERSION_ID!), streams.workConsumer);
  }

  it('never has more requests at the container than MAX_REQUEST_CONCURRENCY', async () => {
    const container = await rig.startContainer(async (req, res) => {
      await sleep(150);
      res.writeHead(200).end(req.body);
    });
    const worker = await rig.startWorker({ env: { MAX_REQUEST_CONCURRENCY: '4' } });
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) => rig.client.invoke(invocationFor(worker.env), Buffer.from(String(i)))),
    );
    const results = await Promise.all(replies.map((r) => rig.client.result(r)));
    expect(results.map((r) => r.body.toString())).toEqual(Array.from({ length: 20 }, (_, i) => String(i)));
    expect(container.maxConcurrent).toBe(4);
  });

  it('renews the lease, so a request running 4 times the ack wait is delivered once', async () => {
    const container = await rig.startContainer(async (req, res) => {
      await sleep(4_000);
      res.writeHead(200).end('done');
    });
    const worker = await rig.startWorker({ env: { MAX_REQUEST_CONCURRENCY: '2', NATS_ACK_WAIT: '1s' } });
    const result = await rig.client.result(await rig.client.invoke(invocationFor(worker.env)), 20_000);
    expect(result.body.toString()).toBe('done');
    expect(container.seen).toHaveLength(1);
    expect((await consumerInfo()).num_redelivered).toBe(0);
  });

  it('consumes nothing while the container is unready, and everything once it is ready', async () => {
    const container = await rig.startContainer({ route: echo, healthStatus: 503 });
    const worker = await rig.startWorker({ waitFor: 'waiting' });
    const replyTo = await rig.client.invoke(invocationFor(worker.env), Buffer.from('waiting'));
    await sleep(1_500);
    expect(worker.worker.state).toBe('waiting');
    expect(container.seen).toHaveLength(0);
    const info = await consumerInfo();
    expect(info.num_pending).toBe(1);
    expect(info.num_ack_pending).toBe(0);
    container.healthStatus = 200;
    const result = await rig.client.result(replyTo);
    expect(result.body.toString()).toBe('waiting');
  });

  it('stops taking work while the container turns unhealthy, and resumes after', async () => {
    const container = await rig.startContainer(echo);
    const worker = await rig.startWorker();
    container.healthStatus = 500;
    await expect.poll(() => worker.worker.state, { timeout: 5_000 }).toBe('unhealthy');
    await sleep(2_500); // let any pull request opened before the change expire
    const before = container.seen.length;
    const replyTo = await rig.client.invoke(invocationFor(worker.env), Buffer.from('later'));
    await sleep(1_000);
    expect(container.seen.length).toBe(before);
    container.healthStatus = 200;
    const result = await rig.client.result(replyTo);
    expect(result.body.toString()).toBe('later');
  });

  it('answers a malformed message with a 400 problem at its reply subject and goes on serving', async () => {
    const container = await rig.startContainer(echo);
    const worker = await rig.startWorker();
    const fv = worker.env.FUNCTION_VERSION_ID!;
    const requestId = randomUUID();
    const replyTo = `nvcf.rs.${requestId}`;
    await rig.client.publishRaw(fv, requestId, encodeFrame({ v: 1, requestId, replyTo, method: 'post' }));
    const problem = await rig.client.result(replyTo);
    expect(problem.status).toBe(400);
    const detail = String(JSON.parse(problem.body.toString()).detail);
    expect(detail).toMatch(/^Malformed invocation message: invalid invocation: /);
    expect(detail).toMatch(/method must be an upper-case HTTP method/);

    await rig.client.publishRaw(fv, randomUUID(), Buffer.from('not a frame at all'));
    await rig.client.publishRaw(fv, randomUUID(), Buffer.from('{"half": \n'));
    const ok = await rig.client.result(await rig.client.invoke(invocationFor(worker.env), Buffer.from('still here')));
    expect(ok.body.toString()).toBe('still here');
    expect(container.seen).toHaveLength(1);
    expect(worker.logs.messages().filter((m) => m.startsWith('malformed invocation'))).toHaveLength(3);
    await expect.poll(async () => (await consumerInfo()).num_ack_pending).toBe(0);
  });

  it('rejects header values with line breaks as malformed instead of sending them on', async () => {
    const container = await rig.startContainer(echo);
    const worker = await rig.startWorker();
    const invocation = invocationFor(worker.env, { headers: [['X-Evil', 'a\r\nInjected: yes']] });
    const problem = await rig.client.result(await rig.client.invoke(invocation));
    expect(problem.status).toBe(400);
    expect(JSON.parse(problem.body.toString()).detail).toMatch(
      /headers\.0\.1 must hold only tab, visible ASCII or Latin-1 characters/,
    );
    expect(container.seen).toHaveLength(0);
  });

  it('refuses header values the HTTP client would reject, and keeps serving with all its connections', async () => {
    const container = await rig.startContainer(echo);
    const worker = await rig.startWorker({ env: { MAX_REQUEST_CONCURRENCY: '2' } });
    // Each of these once reached the HTTP client, which refused it and left a pooled connection
    // wedged; a few of them stalled the worker for good.
    for (const value of ['bell\u0007', 'escape\u001b[0m', 'delete\u007f', 'snowman \u2603']) {
      const problem = await rig.client.result(
        await rig.client.invoke(invocationFor(worker.env, { headers: [['X-Odd', value]] })),
      );
      expect(problem.status).toBe(400);
    }
    const replies = await Promise.all(
      [1, 2, 3, 4].map((i) => rig.client.invoke(invocationFor(worker.env), Buffer.from(`after ${i}`))),
    );
    const results = await Promise.all(replies.map((r) => rig.client.result(r, 10_000)));
    expect(results.map((r) => r.body.toString())).toEqual(['after 1', 'after 2', 'after 3', 'after 4']);
    expect(container.seen).toHaveLength(4);
  });
});
