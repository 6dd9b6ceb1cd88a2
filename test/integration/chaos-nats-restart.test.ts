import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { NatsServer } from '../../src/dev/nats-server.js';
import { TestContainer } from '../support/container.js';
import { startWorker, workerEnv, type RunningWorker } from '../support/env.js';
import { startGateway, waitForStatus, type RunningGateway } from '../support/gateway.js';

describe('a status poll while NATS restarts', () => {
  let nats: NatsServer;
  let container: TestContainer;
  let worker: RunningWorker;
  let gw: RunningGateway;
  let release!: () => void;
  let released: Promise<void>;

  beforeAll(async () => {
    nats = await NatsServer.start();
    container = await TestContainer.start(async (req, res) => {
      await released;
      res.writeHead(200, { 'content-type': 'application/json' }).end(req.body);
    });
    worker = await startWorker(
      await workerEnv(nats.url, container.port, { LOG_LEVEL: 'warn', MAX_REQUEST_CONCURRENCY: '4' }),
    );
    gw = await startGateway(nats.url, { LOG_LEVEL: 'warn' });
    await waitForStatus(gw.url, worker.env.FUNCTION_ID!, worker.env.FUNCTION_VERSION_ID!, 'ACTIVE');
  });

  // Each test holds the container's answers until it releases them.
  beforeEach(() => {
    released = new Promise<void>((r) => (release = r));
  });

  afterAll(async () => {
    release();
    await gw?.stop();
    await worker?.stop();
    await container?.close();
    await nats?.dispose();
  });

  it('answers a caller whose window ends during a NATS outage of 10 s or more with 202 and its request id, never a failure, and delivers later', async () => {
    const { FUNCTION_ID: fid, FUNCTION_VERSION_ID: fvid } = worker.env;
    const pexec = (pollSeconds: string, body: string) =>
      fetch(`${gw.url}/v2/nvcf/pexec/functions/${fid}/versions/${fvid}`, {
        method: 'POST',
        headers: { 'nvcf-poll-seconds': pollSeconds },
        body,
      });
    const seenBefore = container.seen.length;
    const polled = await pexec('1', '"polled"');
    expect(polled.status).toBe(202);
    const polledId = polled.headers.get('nvcf-reqid')!;
    // Both windows end while NATS is away: one is a first call, the other a status poll.
    const waitingCall = pexec('8', '"waiting"');
    const waitingPoll = fetch(`${gw.url}/v2/nvcf/pexec/status/${polledId}`, { headers: { 'nvcf-poll-seconds': '8' } });
    // Both requests are running in the container when NATS goes away.
    await expect.poll(() => container.seen.length, { timeout: 6_000 }).toBe(seenBefore + 2);
    const outageStarted = Date.now();
    await nats.stop();
    const [call, poll] = await Promise.all([waitingCall, waitingPoll]);
    expect([call.status, poll.status]).toEqual([202, 202]);
    expect(poll.headers.get('nvcf-reqid')).toBe(polledId);
    const callId = call.headers.get('nvcf-reqid')!;
    expect(callId).toMatch(/^[0-9a-f-]{36}$/);
    await new Promise((r) => setTimeout(r, Math.max(0, 11_000 - (Date.now() - outageStarted))));
    await nats.restart();
    release();
    for (const [requestId, body] of [
      [polledId, '"polled"'],
      [callId, '"waiting"'],
    ] as const) {
      let done: Response;
      do done = await fetch(`${gw.url}/v2/nvcf/pexec/status/${requestId}`, { headers: { 'nvcf-poll-seconds': '10' } });
      while (done.status === 202);
      expect(`${done.status} ${await done.text()}`).toBe(`200 ${body}`);
    }
  }, 60_000);

  it('is answered 202 (still running), not an error, while a new call is told 503 to retry, and the result arrives once NATS is back, however long it was away', async () => {
    const { FUNCTION_ID: fid, FUNCTION_VERSION_ID: fvid } = worker.env;
    const first = await fetch(`${gw.url}/v2/nvcf/pexec/functions/${fid}/versions/${fvid}`, {
      method: 'POST',
      headers: { 'nvcf-poll-seconds': '1' },
      body: '{"token":"survives"}',
    });
    expect(first.status).toBe(202);
    const requestId = first.headers.get('nvcf-reqid')!;
    await nats.stop();
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
      body: '{}',
    });
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(((await refused.json()) as { detail: string }).detail).toMatch(
      /cannot reach NATS right now \(\w+\); retry later/,
    );
    // Longer than the unpolled-request threshold (10 s): the outage must not count as neglect.
    await new Promise((r) => setTimeout(r, Math.max(0, 11_000 - (Date.now() - outageStarted))));
    await nats.restart();
    release();
    let done: Response;
    do done = await fetch(`${gw.url}/v2/nvcf/pexec/status/${requestId}`, { headers: { 'nvcf-poll-seconds': '10' } });
    while (done.status === 202);
    expect(done.status).toBe(200);
    expect(await done.text()).toBe('{"token":"survives"}');
  });
});
