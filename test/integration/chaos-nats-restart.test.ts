import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { heldEcho } from '../support/container.js';
import { useRig } from '../support/rig.js';

describe('a status poll while NATS restarts', () => {
  // Each test holds the container's answers until it releases them.
  let held = heldEcho();
  beforeEach(() => {
    held = heldEcho();
  });
  const rig = useRig({
    container: (req, res) => held.route(req, res),
    worker: { env: { LOG_LEVEL: 'warn', MAX_REQUEST_CONCURRENCY: '4' } },
    gateway: { env: { LOG_LEVEL: 'warn' }, awaitStatus: 'ACTIVE' },
  });
  // After-hooks run last-registered first: the held request ends before the rig stops the worker.
  afterAll(() => held.release());

  it('answers a caller whose window ends during a NATS outage of 10 s or more with 202 and its request id, never a failure, and delivers later', async () => {
    const { FUNCTION_ID: fid, FUNCTION_VERSION_ID: fvid } = rig.worker.env;
    const pexec = (pollSeconds: string, body: string) =>
      fetch(`${rig.gateway.url}/v2/nvcf/pexec/functions/${fid}/versions/${fvid}`, {
        method: 'POST',
        headers: { 'nvcf-poll-seconds': pollSeconds },
        body,
      });
    const seenBefore = rig.container.seen.length;
    const polled = await pexec('1', '"polled"');
    expect(polled.status).toBe(202);
    const polledId = polled.headers.get('nvcf-reqid')!;
    // Both windows end while NATS is away: one is a first call, the other a status poll.
    const waitingCall = pexec('8', '"waiting"');
    const waitingPoll = fetch(`${rig.gateway.url}/v2/nvcf/pexec/status/${polledId}`, {
      headers: { 'nvcf-poll-seconds': '8' },
    });
    // Both requests are running in the container when NATS goes away.
    await expect.poll(() => rig.container.seen.length, { timeout: 6_000 }).toBe(seenBefore + 2);
    const outageStarted = Date.now();
    await rig.nats.stop();
    const [call, poll] = await Promise.all([waitingCall, waitingPoll]);
    expect([call.status, poll.status]).toEqual([202, 202]);
    expect(poll.headers.get('nvcf-reqid')).toBe(polledId);
    const callId = call.headers.get('nvcf-reqid')!;
    expect(callId).toMatch(/^[0-9a-f-]{36}$/);
    await sleep(Math.max(0, 11_000 - (Date.now() - outageStarted)));
    await rig.nats.restart();
    held.release();
    for (const [requestId, body] of [
      [polledId, '"polled"'],
      [callId, '"waiting"'],
    ] as const) {
      let done: Response;
      do
        done = await fetch(`${rig.gateway.url}/v2/nvcf/pexec/status/${requestId}`, {
          headers: { 'nvcf-poll-seconds': '10' },
        });
      while (done.status === 202);
      expect(`${done.status} ${await done.text()}`).toBe(`200 ${body}`);
    }
  }, 60_000);

  it('is answered 202 (still running), not an error, while a new call is told 503 to retry, and the result arrives once NATS is back, however long it was away', async () => {
    const { FUNCTION_ID: fid, FUNCTION_VERSION_ID: fvid } = rig.worker.env;
    const gw = rig.gateway;
    const first = await fetch(`${gw.url}/v2/nvcf/pexec/functions/${fid}/versions/${fvid}`, {
      method: 'POST',
      headers: { 'nvcf-poll-seconds': '1' },
      body: '{"token":"survives"}',
    });
    expect(first.status).toBe(202);
    const requestId = first.headers.get('nvcf-reqid')!;
    await rig.nats.stop();
    const during = await fetch(`${gw.url}/v2/nvcf/pexec/status/${requestId}`, {
      headers: { 'nvcf-poll-seconds': '2' },
    });
    // A 5xx here would tell the caller its request failed, though it is still running.
    expect(during.status).toBe(202);
    expect(during.headers.get('nvcf-reqid')).toBe(requestId);
    const outageStarted = Date.now();
    // A new call cannot be queued now: the caller is told to retry, not that the gateway broke.
    const refused = await fetch(`${gw.url}/v2/nvcf/pexec/functions/${fid}/versions/${fvid}`, {
      method: 'POST',
      body: '{"refused":true}',
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(((await refused.json()) as { detail: string }).detail).toMatch(
      /cannot reach NATS right now \(\w+\); retry later/,
    );
    // Longer than the unpolled-request threshold (10 s): the outage must not count as neglect.
    await sleep(Math.max(0, 11_000 - (Date.now() - outageStarted)));
    await rig.nats.restart();
    held.release();
    let done: Response;
    do done = await fetch(`${gw.url}/v2/nvcf/pexec/status/${requestId}`, { headers: { 'nvcf-poll-seconds': '10' } });
    while (done.status === 202);
    expect(done.status).toBe(200);
    expect(await done.text()).toBe('{"token":"survives"}');
    // The refused call was never queued, not even once NATS came back: a call made after it
    // runs, and the container never saw it.
    const later = await fetch(`${gw.url}/v2/nvcf/pexec/functions/${fid}/versions/${fvid}`, {
      method: 'POST',
      body: '{"later":true}',
    });
    expect(later.status).toBe(200);
    expect(rig.container.seen.map((seen) => seen.body.toString())).not.toContain('{"refused":true}');
  });
});
