import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { RequestStore } from '../../src/gateway/invocations/requests.js';
import { useRig } from '../support/rig.js';

describe('the request records', () => {
  // A connection that outlives the restart below.
  const rig = useRig({ client: { maxReconnectAttempts: -1, reconnectTimeWait: 100 } });

  it('hand a result out once: one call holds it while it writes, a release makes it claimable again, a commit makes it gone, and NATS away changes nothing', async () => {
    const store = new RequestStore(await rig.nc.jetstream().views.kv('nvcf_requests', { history: 1 }));
    const now = Date.now();
    const requestId = crypto.randomUUID();
    await store.create({
      requestId,
      functionId: 'f',
      functionVersionId: 'v',
      gatewayId: 'g',
      replyTo: `nvcf.rs.g.${requestId}`,
      createdAt: now,
      lastSeenAt: now,
      pollSeconds: 5,
    });
    const first = await store.reserve(requestId, 30_000);
    expect(first.outcome).toBe('reserved');
    expect((await store.reserve(requestId, 30_000)).outcome).toBe('busy');
    if (first.outcome === 'reserved') await first.lease.release();
    await rig.nats.stop();
    // Nothing was changed: the caller can safely be told to poll again.
    expect((await store.reserve(requestId, 30_000)).outcome).toBe('unknown');
    await rig.nats.restart();
    await expect
      .poll(
        () =>
          store.get(requestId).then(
            (e) => e?.record.requestId,
            () => undefined,
          ),
        { timeout: 20_000 },
      )
      .toBe(requestId);
    const second = await store.reserve(requestId, 30_000);
    expect(second.outcome).toBe('reserved');
    if (second.outcome === 'reserved') await second.lease.commit();
    expect((await store.reserve(requestId, 30_000)).outcome).toBe('gone');
  }, 60_000);

  it('let a lease whose holder died run out, so the result is claimable again', async () => {
    const kv = await rig.nc.jetstream().views.kv('nvcf_requests', { history: 1 });
    const store = new RequestStore(kv);
    const now = Date.now();
    const requestId = crypto.randomUUID();
    // What a gateway killed mid-write leaves: a lease nobody renews.
    const record = {
      requestId,
      functionId: 'f',
      functionVersionId: 'v',
      gatewayId: 'g',
      replyTo: `nvcf.rs.g.${requestId}`,
      createdAt: now,
      lastSeenAt: now,
      pollSeconds: 5,
      deliveringUntil: now + 300,
    };
    await kv.put(requestId, JSON.stringify(record));
    expect((await store.reserve(requestId, 30_000)).outcome).toBe('busy');
    await sleep(400);
    expect((await store.reserve(requestId, 30_000)).outcome).toBe('reserved');
  });
});
