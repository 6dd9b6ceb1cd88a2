import { describe, expect, it } from 'vitest';
import { buckets } from '../../src/shared/protocol.js';
import { gate } from '../support/container.js';
import { useRig } from '../support/rig.js';

describe("the gateway's record of a request", () => {
  const rig = useRig({
    worker: { env: { MAX_REQUEST_CONCURRENCY: '4', LOG_LEVEL: 'warn' } },
    gateway: { env: { LOG_LEVEL: 'warn' }, awaitStatus: 'ACTIVE' },
  });
  const pexec = (body: string, pollSeconds = '10') =>
    fetch(`${rig.gateway.url}/v2/nvcf/pexec/functions/${rig.worker.env.FUNCTION_ID}`, {
      method: 'POST',
      headers: { 'nvcf-poll-seconds': pollSeconds },
      body,
    });
  const records = () => rig.nc.jetstream().views.kv(buckets.requests, { bindOnly: true });
  /** Every write the bucket has taken: creates, updates and deletes. */
  const writes = async () => (await (await records()).status()).streamInfo.state.last_seq;

  it('is never written for calls answered at once with a small result', async () => {
    rig.container.route = (req, res) => void res.writeHead(200).end(req.body);
    await (await pexec('"warm"')).text();
    const before = await writes();
    for (let i = 0; i < 10; i++) {
      const res = await pexec(`{"n":${i}}`);
      expect(`${res.status} ${await res.text()}`).toBe(`200 {"n":${i}}`);
    }
    expect(await writes()).toBe(before);
  });

  it('is written once a call runs past its first second, so a gateway that dies with it open leaves it to be swept, and goes once the result is delivered', async () => {
    const done = gate();
    let requestId = '';
    rig.container.route = async (req, res) => {
      requestId = String(req.headers['nvcf-reqid']);
      await done.opened;
      res.writeHead(200).end('"slow"');
    };
    const kv = await records();
    const call = pexec('{}');
    await expect.poll(() => requestId).not.toBe('');
    await expect.poll(async () => (await kv.get(requestId))?.operation, { timeout: 5_000 }).toBe('PUT');
    done.open();
    const res = await call;
    expect(`${res.status} ${await res.text()}`).toBe('200 "slow"');
    await expect.poll(async () => (await kv.get(requestId))?.operation ?? 'none').not.toBe('PUT');
  });

  it('is there before a 202 hands its id out, so the first poll finds the request', async () => {
    const done = gate();
    rig.container.route = async (_req, res) => {
      await done.opened;
      res.writeHead(200).end('"polled"');
    };
    const first = await pexec('{}', '1');
    expect(first.status).toBe(202);
    const requestId = first.headers.get('nvcf-reqid')!;
    const kv = await records();
    expect((await kv.get(requestId))?.operation).toBe('PUT');
    done.open();
    let res: Response;
    do
      res = await fetch(`${rig.gateway.url}/v2/nvcf/pexec/status/${requestId}`, {
        headers: { 'nvcf-poll-seconds': '5' },
      });
    while (res.status === 202);
    expect(`${res.status} ${await res.text()}`).toBe('200 "polled"');
  });
});
