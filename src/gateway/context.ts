import type { JetStreamManager, KV, NatsConnection } from 'nats';
import type { ProtocolClient } from './protocol-client.js';
import type { Logger } from '../shared/log.js';
import type { AssetCatalog } from './asset-store.js';
import type { GatewayConfig } from './config.js';
import type { DeploymentController } from './lifecycle/controller.js';
import type { LifecycleStore } from './lifecycle/store.js';
import type { LiveResults } from './live.js';
import type { Queues } from './queues.js';
import type { FunctionRegistry } from './registry.js';
import type { PendingRequest, RequestStore } from './requests.js';
import type { UrlSigner } from './signing.js';
import type { BlobStore } from './storage.js';

/** Everything a route needs, built once by the Gateway and handed to each handler. */
export interface GatewayContext {
  config: GatewayConfig;
  nc: NatsConnection;
  jsm: JetStreamManager;
  client: ProtocolClient;
  requests: RequestStore;
  registry: FunctionRegistry;
  queues: Queues;
  store: BlobStore;
  assets: AssetCatalog;
  signer: UrlSigner;
  log: Logger;
  /** Responses of this gateway's requests as they are published, for the calls that queued them. */
  live: LiveResults;
  /** Request ids with a client call waiting on this gateway now, and how many calls. */
  waiting: Map<string, number>;
  /** Versions whose work queue this process has made sure of. */
  ensuredQueues: Set<string>;
  /** Registered function versions and deployments, and the controller that runs this gateway's deployments. */
  lifecycle: { store: LifecycleStore; controller: DeploymentController };
  /** Aborted when the gateway starts to stop: waiting calls then answer 202 so their callers can poll again later. */
  shutdown: AbortSignal;
}

/**
 * Stops a request everywhere: the worker running it aborts its container call, a queued copy is
 * purged before any worker starts it, and later polls get 404.
 */
export async function cancelRequest(
  ctx: GatewayContext,
  record: Pick<PendingRequest, 'requestId' | 'functionVersionId'>,
  reason: string,
): Promise<void> {
  ctx.client.cancel(record.functionVersionId, record.requestId);
  await Promise.all([
    ctx.queues
      .purge(record.functionVersionId, record.requestId)
      .catch((err: Error) =>
        ctx.log.warn({ requestId: record.requestId, err: err.message }, 'could not purge a cancelled request'),
      ),
    ctx.requests.remove(record.requestId),
  ]);
  ctx.log.info({ requestId: record.requestId, reason }, 'request cancelled');
}

export { UUID_PATTERN } from '../shared/protocol.js';

/** Every key of a bucket. Collected before use: awaiting inside nats.js's key iterator ends it early. */
export async function allKeys(kv: KV): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of await kv.keys()) keys.push(key);
  return keys;
}
