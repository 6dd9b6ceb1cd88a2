import { describe, expect, it } from 'vitest';
import { echo } from '../support/container.js';
import { useRig } from '../support/rig.js';

describe('a gateway under pressure', () => {
  const rig = useRig({
    // Registered but never ready: requests queue up and nobody takes them.
    container: { route: echo, healthStatus: 503 },
    gateway: { env: { GATEWAY_QUEUE_MAX: '2' }, awaitStatus: 'DEPLOYING' },
    worker: { env: { LOG_LEVEL: 'warn' }, waitFor: 'waiting' },
  });

  it('answers 429 with Retry-After once the queue holds GATEWAY_QUEUE_MAX requests', async () => {
    const url = `${rig.gateway.url}/v2/nvcf/pexec/functions/${rig.worker.env.FUNCTION_ID}`;
    const waiting = [1, 2].map(() => fetch(url, { method: 'POST', headers: { 'NVCF-POLL-SECONDS': '3' }, body: '{}' }));
    const lengthUrl = `${rig.gateway.url}/v2/nvcf/queues/functions/${rig.worker.env.FUNCTION_ID}`;
    await expect
      .poll(
        async () =>
          ((await (await fetch(lengthUrl)).json()) as { queues: { queueLength: number }[] }).queues[0]!.queueLength,
      )
      .toBe(2);
    const refused = await fetch(url, { method: 'POST', body: '{}' });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(refused.headers.get('content-type')).toBe('application/problem+json');
    expect(((await refused.json()) as { detail: string }).detail).toMatch(/is full/);
    // The two that were queued end as NVCF ends them: no worker took them in time. (The first
    // 504 takes its request off the queue; the other must still be waiting, not lost with it.)
    expect((await Promise.all(waiting)).map((r) => r.status)).toEqual([504, 504]);
  });

  it('never admits more than GATEWAY_QUEUE_MAX requests, however many calls arrive at once', async () => {
    const url = `${rig.gateway.url}/v2/nvcf/pexec/functions/${rig.worker.env.FUNCTION_ID}`;
    const answers = await Promise.all(
      Array.from({ length: 30 }, () =>
        fetch(url, { method: 'POST', headers: { 'NVCF-POLL-SECONDS': '2' }, body: '{}' }).then((r) => r.status),
      ),
    );
    // Whoever was admitted ends 504 (no worker); everyone else was refused at the door.
    expect(answers.filter((s) => s !== 429).length).toBeLessThanOrEqual(2);
    expect(answers.filter((s) => s === 429).length).toBeGreaterThanOrEqual(28);
  });

  it('keeps every other queued request when one is cancelled', async () => {
    const url = `${rig.gateway.url}/v2/nvcf/pexec/functions/${rig.worker.env.FUNCTION_ID}`;
    const first = fetch(url, { method: 'POST', headers: { 'NVCF-POLL-SECONDS': '30' }, body: '"first"' });
    const lengthUrl = `${rig.gateway.url}/v2/nvcf/queues/functions/${rig.worker.env.FUNCTION_ID}`;
    const length = async () =>
      ((await (await fetch(lengthUrl)).json()) as { queues: { queueLength: number }[] }).queues[0]!.queueLength;
    await expect.poll(length).toBe(1);
    const leaving = new AbortController();
    const second = fetch(url, {
      method: 'POST',
      headers: { 'NVCF-POLL-SECONDS': '30' },
      body: '"second"',
      signal: leaving.signal,
    }).catch(() => undefined);
    await expect.poll(length).toBe(2);
    leaving.abort(); // the client goes away: its request is cancelled and taken off the queue
    await second;
    await expect.poll(length).toBe(1);
    rig.container.healthStatus = 200;
    const answer = await first;
    expect(answer.status).toBe(200);
    expect(await answer.text()).toBe('"first"');
  });
});
