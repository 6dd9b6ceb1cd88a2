import type { ConnectionOptions } from 'nats';
import type { NatsServerOptions } from '../../src/dev/nats-server.js';
import type { Route } from './container.js';
import type { WorkerProcess } from './process.js';

/** What a test can ask the rig (rig.ts) for: each part, and how it is to be started. */

export interface WorkerOptions {
  /** Settings over those of `workerEnv` (the whole env of another worker starts its twin). */
  env?: Record<string, string>;
  /** Return once the worker pulls work (the default), or once it waits for its container. */
  waitFor?: 'running' | 'waiting';
}

export interface GatewayOptions {
  env?: Record<string, string>;
  /** Return only once the gateway reports the rig's worker function in this status. */
  awaitStatus?: 'ACTIVE' | 'DEPLOYING';
  /** The API key to ask for that status with, for a gateway started with keys. */
  apiKey?: string;
}

/** A container the rig does not run itself (an example server, say), closed at dispose. */
export interface ExternalContainer {
  port: number;
  close(): Promise<void> | void;
}

export interface RigOptions {
  /** On when a worker, gateway or client is asked for; options go to the nats-server. */
  nats?: boolean | NatsServerOptions | { url: string };
  /** A `TestClient` on its own connection; on whenever NATS is (options go to `connect`). */
  client?: boolean | ConnectionOptions;
  /** A `TestStorage` (presigned-style object store). */
  storage?: boolean;
  /**
   * On (an echo `TestContainer`) when a worker is asked for; or a route, a route with a first
   * health status, or `start` for a container the rig does not run itself.
   */
  container?: boolean | Route | { route?: Route; healthStatus?: number } | { start(): Promise<ExternalContainer> };
  /** A worker in this process, against the rig's NATS and container. */
  worker?: boolean | WorkerOptions;
  /** A gateway in this process (started before the worker, as an API outlives its workers). */
  gateway?: boolean | GatewayOptions;
}

export type SpawnedWorker = WorkerProcess & { env: Record<string, string> };
