import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { UUID_PATTERN } from '../shared/protocol.js';
import {
  checkNatsCredentials,
  deepFreeze,
  duration,
  flag,
  logLevel,
  natsEnv,
  natsSettings,
  optionalText,
  parseEnv,
  port,
  present,
  whole,
} from '../shared/env.js';

/**
 * Worker configuration, read once from the environment under the same names NVCF's own worker
 * uses, so the sidecar drops into an NVCF-style pod spec unchanged. Every variable, its default
 * and its meaning is listed in docs/configuration.md; keep the two in step.
 */

const WorkerEnv = z.object({
  FUNCTION_ID: z
    .string({ error: 'set it to the function id (a UUID)' })
    .regex(UUID_PATTERN, 'must be the function id (a UUID)'),
  FUNCTION_VERSION_ID: z
    .string({ error: 'set it to the function version id (a UUID)' })
    .regex(UUID_PATTERN, 'must be the function version id (a UUID)'),
  FUNCTION_NAME: z.string().default(''),
  NCA_ID: z.string().default(''),
  INFERENCE_HOST: z.string().min(1).default('127.0.0.1'),
  INFERENCE_PORT: whole(1, 65535).default(8000),
  INFERENCE_URL: z.string().startsWith('/', 'must be a request path such as /v2/models/m/infer').default('/'),
  INFERENCE_HEALTH_ENDPOINT: z
    .string()
    .startsWith('/', 'must be a request path such as /v2/health/ready')
    .default('/v2/health/ready'),
  INFERENCE_HEALTH_PORT: whole(1, 65535).optional(),
  INFERENCE_HEALTH_TIMEOUT: duration('31s'),
  INFERENCE_HEALTH_EXPECTED_RESPONSE_CODE: whole(100, 599).default(200),
  INFERENCE_HEALTH_INTERVAL: duration('10s'),
  INFERENCE_READY_TIMEOUT: duration('30m'),
  MAX_REQUEST_CONCURRENCY: whole(1, 16384).default(1),
  BASE_ASSET_DIR: z.string().startsWith('/', 'must be an absolute path').default('/var/inf/inputAssets'),
  BASE_RESPONSE_DIR: z.string().startsWith('/', 'must be an absolute path').default('/var/inf/response'),
  HEALTH_PORT: port(8080),
  METRICS_PORT: port(8010),
  CLOUD_PROVIDER: z.string().default(''),
  INSTANCE_TYPE: z.string().default(''),
  ZONE_NAME: z.string().default(''),
  ICMS_ENVIRONMENT: z.string().optional(),
  SPOT_ENVIRONMENT: z.string().default(''),
  NVCF_NSPECT_ID: z.string().default(''),
  V3_BACKWARDS_COMPATIBILITY_DISABLED: flag,
  ...natsEnv,
  DRAIN_GRACE: duration('100s'),
  STREAM_READER_TIMEOUT: duration('60s'),
  ASSET_MAX_BYTES: whole(1, Number.MAX_SAFE_INTEGER).default(5 * 1024 ** 3),
  ASSET_DOWNLOAD_TIMEOUT: duration('30m'),
  SPOOL_DIR: z.string().startsWith('/', 'must be an absolute path').default(join(tmpdir(), 'nvcf-sidecar-spool')),
  TERMINATION_LOG_PATH: z.string().default('/dev/termination-log'),
  WORKER_ID: optionalText,
  LOG_LEVEL: logLevel,
});

export type WorkerConfig = Readonly<ReturnType<typeof compile>>;

function compile(env: z.output<typeof WorkerEnv>) {
  return {
    functionId: env.FUNCTION_ID.toLowerCase(),
    functionVersionId: env.FUNCTION_VERSION_ID.toLowerCase(),
    functionName: env.FUNCTION_NAME,
    ncaId: env.NCA_ID,
    // The id is a key in the workers bucket, whose keys allow only these characters.
    workerId: (env.WORKER_ID ?? `${hostname()}-${randomBytes(3).toString('hex')}`).replace(/[^A-Za-z0-9_=-]/g, '_'),
    inference: {
      origin: `http://${env.INFERENCE_HOST}:${env.INFERENCE_PORT}`,
      path: env.INFERENCE_URL,
    },
    health: {
      url: `http://${env.INFERENCE_HOST}:${env.INFERENCE_HEALTH_PORT || env.INFERENCE_PORT}${env.INFERENCE_HEALTH_ENDPOINT}`,
      timeoutMs: env.INFERENCE_HEALTH_TIMEOUT,
      expectedStatus: env.INFERENCE_HEALTH_EXPECTED_RESPONSE_CODE,
      intervalMs: env.INFERENCE_HEALTH_INTERVAL,
      readyTimeoutMs: env.INFERENCE_READY_TIMEOUT,
    },
    concurrency: env.MAX_REQUEST_CONCURRENCY,
    assetDir: env.BASE_ASSET_DIR,
    assetLimits: { maxBytes: env.ASSET_MAX_BYTES, timeoutMs: env.ASSET_DOWNLOAD_TIMEOUT },
    /** Private scratch space for response bodies too large to keep in memory. */
    spoolDir: env.SPOOL_DIR,
    responseDir: env.BASE_RESPONSE_DIR,
    healthPort: env.HEALTH_PORT,
    metricsPort: env.METRICS_PORT,
    /** Values of the worker-owned NVCF-* headers that come from the pod, not the request. */
    pod: {
      backend: env.CLOUD_PROVIDER === 'NGN' ? 'GFN' : env.CLOUD_PROVIDER,
      instanceType: env.INSTANCE_TYPE,
      region: env.ZONE_NAME,
      environment: env.ICMS_ENVIRONMENT ?? env.SPOT_ENVIRONMENT,
      nspectId: env.NVCF_NSPECT_ID,
    },
    passThroughAlways: env.V3_BACKWARDS_COMPATIBILITY_DISABLED,
    nats: natsSettings(env),
    drainGraceMs: env.DRAIN_GRACE,
    streamReaderTimeoutMs: env.STREAM_READER_TIMEOUT,
    terminationLogPath: env.TERMINATION_LOG_PATH,
    logLevel: env.LOG_LEVEL,
  };
}

export function loadWorkerConfig(env: NodeJS.ProcessEnv): WorkerConfig {
  const config = compile(parseEnv(WorkerEnv, present(env), 'worker', 'docs/configuration.md'));
  checkNatsCredentials(config.nats, 'worker');
  return deepFreeze(config);
}
