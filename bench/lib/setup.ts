import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NatsServer } from '../../src/dev/nats-server.js';
import { startNode, type Proc } from './processes.js';

interface Fn {
  functionId: string;
  functionVersionId: string;
}

export interface Rig {
  nats: NatsServer;
  container: Proc;
  containerOrigin: string;
  worker: Proc;
  /** The function the real worker serves. */
  workerFn: Fn;
  forwarder: Proc;
  /** The function the bare forwarder serves (its own work queue). */
  bareFn: Fn;
  gateway: Proc;
  gatewayUrl: string;
  scratch: string;
  close(): Promise<void>;
}

const CONCURRENCY = 64;

const newFn = (): Fn => ({ functionId: randomUUID(), functionVersionId: randomUUID() });
const tsx = (script: string) => ['--import', 'tsx', script];

/**
 * Every process of the benchmark on loopback: a private nats-server, the bench container, the
 * real worker (compiled, `node dist/main.js worker`), the bare forwarder and the gateway.
 * `profileDir`: the worker and the gateway write their CPU profiles there (`node --cpu-prof`,
 * which NODE_OPTIONS refuses), named `worker.cpuprofile` and `gateway.cpuprofile`.
 */
export async function startRig(profileDir?: string): Promise<Rig> {
  const profiled = (name: string) =>
    profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`] : [];
  const scratch = await mkdtemp(join(tmpdir(), 'nvcf-bench-'));
  const nats = await NatsServer.start();
  const container = startNode(tsx('bench/containers/bench-container.ts'), {});
  const port = Number((await container.waitFor((l) => l.msg === 'listening')).port);
  container.quiet();
  const containerOrigin = `http://127.0.0.1:${port}`;

  const workerFn = newFn();
  const worker = startNode([...profiled('worker'), 'dist/main.js', 'worker'], {
    FUNCTION_ID: workerFn.functionId,
    FUNCTION_VERSION_ID: workerFn.functionVersionId,
    FUNCTION_NAME: 'bench',
    INFERENCE_PORT: String(port),
    INFERENCE_URL: '/echo',
    BASE_ASSET_DIR: join(scratch, 'assets'),
    BASE_RESPONSE_DIR: join(scratch, 'response'),
    SPOOL_DIR: join(scratch, 'spool'),
    TERMINATION_LOG_PATH: join(scratch, 'termination-log'),
    HEALTH_PORT: '0',
    METRICS_PORT: '0',
    NATS_URL: nats.url,
    MAX_REQUEST_CONCURRENCY: String(CONCURRENCY),
    WORKER_ID: 'bench-worker',
    LOG_LEVEL: 'info',
  });
  await worker.waitFor((l) => l.msg === 'worker state' && l.to === 'running');
  worker.quiet();

  const bareFn = newFn();
  const forwarder = startNode(tsx('bench/forwarder.ts'), {
    NATS_URL: nats.url,
    FUNCTION_VERSION_ID: bareFn.functionVersionId,
    CONTAINER_ORIGIN: containerOrigin,
    CONCURRENCY: String(CONCURRENCY),
  });
  await forwarder.waitFor((l) => l.msg === 'forwarding');
  forwarder.quiet();

  const gateway = startNode([...profiled('gateway'), 'dist/main.js', 'gateway'], {
    NATS_URL: nats.url,
    GATEWAY_PORT: '0',
    GATEWAY_ID: 'gwbench',
    LOG_LEVEL: 'info',
  });
  const gatewayUrl = String((await gateway.waitFor((l) => l.msg === 'gateway listening')).url);
  gateway.quiet();

  return {
    nats,
    container,
    containerOrigin,
    worker,
    workerFn,
    forwarder,
    bareFn,
    gateway,
    gatewayUrl,
    scratch,
    async close() {
      await Promise.all([gateway.stop(), forwarder.stop(), worker.stop()]);
      await container.stop();
      await nats.dispose();
      await rm(scratch, { recursive: true, force: true });
    },
  };
}
