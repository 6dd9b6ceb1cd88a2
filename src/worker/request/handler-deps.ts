import type { JetStreamClient, JetStreamManager, NatsConnection } from 'nats';
import type { CancelRegistry } from '../cancels.js';
import type { WorkerConfig } from '../config.js';
import type { Logger } from '../../shared/log.js';
import type { Outcome, WorkerMetrics } from '../metrics.js';
import type { ContainerClient } from './container-client.js';

/** What the worker hands each delivery: its settings, its NATS clients, its container and its books. */
export interface HandlerDeps {
  config: WorkerConfig;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  container: ContainerClient;
  cancels: CancelRegistry;
  /** The real path of BASE_RESPONSE_DIR, resolved once at start. */
  realResponseDir: string;
  /** The consumer's max_deliver: the delivery after which JetStream gives up on a message. */
  maxDeliver: number;
  log: Logger;
  metrics: WorkerMetrics;
  bodyLimit: number;
}

/** How a delivery ended, as the metrics count it; `returned` went back to the queue. */
export type HandledOutcome = Outcome | 'returned';
