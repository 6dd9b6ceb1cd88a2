import type { JetStreamManager, NatsConnection } from 'nats';
import type { ProtocolClient } from './invocations/protocol-client.js';
import type { Logger } from '../shared/log.js';
import type { NatsLink } from '../shared/nats-link.js';
import type { AssetCatalog } from './storage/asset-store.js';
import type { GatewayConfig } from './config.js';
import type { DeploymentController } from './lifecycle/controller.js';
import type { LifecycleStore } from './lifecycle/store.js';
import type { Queues } from './invocations/queues.js';
import type { FunctionRegistry } from './functions/registry.js';
import type { PendingRequest, RequestStore } from './invocations/requests.js';
import type { ResultsFloor } from './invocations/results-floor.js';
import type { UrlSigner } from './storage/signing.js';
import type { BlobStore } from './storage/storage.js';

/** Everything a route needs, built once by the Gateway and handed to each handler. */
export interface GatewayContext {
  config: GatewayConfig;
  nc: NatsConnection;
  /** Whether NATS is reachable now: a new call is refused at once, with nothing queued, while it is not. */
  link: NatsLink;
  jsm: JetStreamManager;
  client: ProtocolClient;
  requests: RequestStore;
  /** Where in NVCF_RS a new request's responses can start (invocations/results-floor.ts). */
  resultsFloor: ResultsFloor;
  registry: FunctionRegistry;
  queues: Queues;
  store: BlobStore;
  assets: AssetCatalog;
  signer: UrlSigner;
  log: Logger;
  /** Records of requests whose ids went out while NATS would not take them; written as it comes back (queued-record.ts). */
  unrecorded: Map<string, PendingRequest>;
  /** Request ids with a client call waiting on this gateway now, and how many calls. */
  waiting: Map<string, number>;
  /** Versions whose work queue this process has made sure of. */
  ensuredQueues: Set<string>;
  /** Registered function versions and deployments, and the controller that runs this gateway's deployments. */
  lifecycle: { store: LifecycleStore; controller: DeploymentController };
  /** Aborted when the gateway starts to stop: waiting calls then answer 202 so their callers can poll again later. */
  shutdown: AbortSignal;
}
