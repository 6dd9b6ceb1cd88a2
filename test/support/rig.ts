import type { NatsConnection } from 'nats';
import { afterAll, beforeAll } from 'vitest';
import type { ProtocolClient } from '../../src/gateway/protocol-client.js';
import { NatsServer } from '../../src/dev/nats-server.js';
import { TestContainer, echo } from './container.js';
import { clientFor, startWorker, workerEnv, type RunningWorker } from './env.js';

export interface WorkerRig {
  nats: NatsServer;
  container: TestContainer;
  worker: RunningWorker;
  nc: NatsConnection;
  client: ProtocolClient;
}

/**
 * The usual arrangement of a test file: its own nats-server, an echo container, one worker in
 * this process and a protocol client, started before the file's tests and stopped after them.
 * The fields are filled in by the time the tests run.
 */
export function useWorkerRig(extraEnv: Record<string, string> = {}): WorkerRig {
  const rig = {} as WorkerRig;
  beforeAll(async () => {
    rig.nats = await NatsServer.start();
    rig.container = await TestContainer.start(echo);
    rig.worker = await startWorker(await workerEnv(rig.nats.url, rig.container.port, extraEnv));
    Object.assign(rig, await clientFor(rig.nats.url));
  });
  afterAll(async () => {
    await rig.worker?.stop();
    await rig.nc?.close();
    await rig.container?.close();
    await rig.nats?.dispose();
  });
  return rig;
}
