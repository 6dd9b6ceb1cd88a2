import { describe, expect, it } from 'vitest';
import { ClaimNotTried, RequestStore } from '../../src/gateway/requests.js';
import { useRig } from '../support/rig.js';

describe('the request records', () => {
  // A connection that outlives the restart below.
  const rig = useRig({ client: { maxReconnectAttempts: -1, reconnectTimeWait: 100 } });

  it('hand a result out once, and say so when a claim could not even be tried because NATS was away', async () => {
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
    await rig.nats.stop();
    // Nothing was changed: the caller can safely be told to poll again.
    await expect(store.claim(requestId)).rejects.toBeInstanceOf(ClaimNotTried);
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
    expect(await store.claim(requestId)).toBe(true);
    expect(await store.claim(requestId)).toBe(false);
  }, 60_000);
});
