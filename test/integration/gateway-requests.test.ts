import { connect, type NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClaimNotTried, RequestStore } from '../../src/gateway/requests.js';
import { NatsServer } from '../../src/dev/nats-server.js';

describe('the request records', () => {
  let nats: NatsServer;
  let nc: NatsConnection;

  beforeAll(async () => {
    nats = await NatsServer.start();
    nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  });
  afterAll(async () => {
    await nc?.close();
    await nats?.dispose();
  });

  it('hand a result out once, and say so when a claim could not even be tried because NATS was away', async () => {
    const store = new RequestStore(await nc.jetstream().views.kv('nvcf_requests', { history: 1 }));
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
    await nats.stop();
    // Nothing was changed: the caller can safely be told to poll again.
    await expect(store.claim(requestId)).rejects.toBeInstanceOf(ClaimNotTried);
    await nats.restart();
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
