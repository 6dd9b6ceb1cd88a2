import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadWorkerConfig } from '../../src/worker/config.js';
import type { InvocationRequest } from '../../src/gateway/invocations/protocol-client.js';
import { createLogger } from '../../src/shared/log.js';
import { Worker } from '../../src/worker/lifecycle.js';
import type { TestStorage } from './storage.js';

/** Environment for a worker under test: private dirs, ports chosen by the OS, fast health checks. */
export async function workerEnv(
  natsUrl: string,
  containerPort: number,
  extra: Record<string, string> = {},
): Promise<Record<string, string>> {
  const root = await mkdtemp(join(tmpdir(), 'nvcf-worker-'));
  return {
    FUNCTION_ID: randomUUID(),
    FUNCTION_VERSION_ID: randomUUID(),
    FUNCTION_NAME: 'test-function',
    NCA_ID: 'nca-owner',
    INFERENCE_PORT: String(containerPort),
    INFERENCE_URL: '/infer',
    INFERENCE_HEALTH_INTERVAL: '200ms',
    INFERENCE_HEALTH_TIMEOUT: '2s',
    BASE_ASSET_DIR: join(root, 'inputAssets'),
    BASE_RESPONSE_DIR: join(root, 'response'),
    TERMINATION_LOG_PATH: join(root, 'termination-log'),
    HEALTH_PORT: '0',
    METRICS_PORT: '0',
    NATS_URL: natsUrl,
    CLOUD_PROVIDER: 'DGXCLOUD',
    INSTANCE_TYPE: 'TEST.GPU.L40',
    ZONE_NAME: 'us-test-1a',
    ICMS_ENVIRONMENT: 'test',
    NVCF_NSPECT_ID: 'NSPECT-TEST',
    LOG_LEVEL: 'debug',
    ...extra,
  };
}

/** A log destination that keeps parsed lines, so tests can assert on what was logged. */
export class LogSink extends Writable {
  readonly lines: Record<string, unknown>[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    for (const line of chunk.toString().split('\n'))
      if (line) this.lines.push(JSON.parse(line) as Record<string, unknown>);
    done();
  }
  messages(): string[] {
    return this.lines.map((l) => String(l.msg));
  }
}

export interface RunningWorker {
  worker: Worker;
  env: Record<string, string>;
  logs: LogSink;
  exit: Promise<number>;
  stop(): Promise<number>;
}

/** Runs a worker in this process and waits until it pulls work, or until it waits for its container. */
export async function startWorker(
  env: Record<string, string>,
  waitFor: 'running' | 'waiting' = 'running',
): Promise<RunningWorker> {
  const config = loadWorkerConfig(env);
  const logs = new LogSink();
  const worker = new Worker(config, createLogger(config.logLevel, logs));
  const exit = worker.run();
  const deadline = Date.now() + 20_000;
  while (worker.state !== waitFor) {
    if (Date.now() > deadline) throw new Error(`worker did not start: ${JSON.stringify(logs.lines.slice(-5))}`);
    await sleep(20);
  }
  return { worker, env, logs, exit, stop: () => (worker.requestStop(), exit) };
}

/** A well-formed invocation for the worker configured by `env`. */
export function invocationFor(
  env: Record<string, string>,
  overrides: Partial<InvocationRequest> = {},
): InvocationRequest {
  return {
    requestId: randomUUID(),
    functionId: env.FUNCTION_ID!,
    functionVersionId: env.FUNCTION_VERSION_ID!,
    ncaId: 'nca-caller',
    subject: 'client-sub',
    method: 'POST',
    path: env.INFERENCE_URL ?? '/infer',
    headers: [['Content-Type', 'application/octet-stream']],
    requestTime: Date.now(),
    pollSeconds: 60,
    ...overrides,
  };
}

/** An invocation for the worker configured by `env`, with a large-result slot in `storage`. */
export function largeResultInvocation(
  env: Record<string, string>,
  storage: TestStorage,
  overrides: Partial<InvocationRequest> = {},
): InvocationRequest {
  const requestId = overrides.requestId ?? randomUUID();
  const url = storage.url(`${requestId}.zip`);
  return invocationFor(env, { requestId, largeResult: { uploadUrl: url, downloadUrl: url }, ...overrides });
}
