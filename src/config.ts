import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';

/**
 * Worker configuration, read once from the environment under the same names NVCF's own worker
 * uses, so the sidecar drops into an NVCF-style pod spec unchanged. Every variable, its default
 * and its meaning is listed in docs/configuration.md; keep the two in step.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Durations arrive in three spellings in NVCF pod specs: plain seconds ("30"), Go durations
 * ("31s", "1h30m", "500ms") and ISO 8601 ("PT10S", from the function definition API).
 * Returns milliseconds, or undefined when the text is none of them.
 */
export function parseDurationMs(text: string): number | undefined {
  const value = text.trim();
  if (/^\d+(\.\d+)?$/.test(value)) return Math.round(Number(value) * 1000);
  const iso = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/i.exec(value);
  if (iso && value.length > 1 && !/T$/i.test(value)) {
    const [, d = '0', h = '0', m = '0', s = '0'] = iso;
    return Math.round(((Number(d) * 24 + Number(h)) * 60 + Number(m)) * 60_000 + Number(s) * 1000);
  }
  const unitMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== value) return undefined;
  return Math.round(parts.reduce((sum, p) => sum + Number(p[1]) * unitMs[p[2]!]!, 0));
}

const duration = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const ms = parseDurationMs(text);
      if (ms === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `"${text}" is not a duration; write seconds ("30"), a Go duration ("30s", "5m") or ISO 8601 ("PT30S")`,
        });
        return z.NEVER;
      }
      return ms;
    });

const whole = (min: number, max: number) =>
  z.coerce
    .number({ error: `must be a whole number from ${min} to ${max}` })
    .int(`must be a whole number from ${min} to ${max}`)
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);
const port = (fallback: number) => whole(0, 65535).default(fallback);
const optionalText = z.string().trim().optional().transform((v) => (v ? v : undefined));
const flag = z.stringbool({ truthy: ['true', '1', 'yes', 'on'], falsy: ['false', '0', 'no', 'off', ''] }).default(false);

const WorkerEnv = z.object({
  FUNCTION_ID: z.string({ error: 'set it to the function id (a UUID)' }).regex(UUID, 'must be the function id (a UUID)'),
  FUNCTION_VERSION_ID: z.string({ error: 'set it to the function version id (a UUID)' }).regex(UUID, 'must be the function version id (a UUID)'),
  FUNCTION_NAME: z.string().default(''),
  NCA_ID: z.string().default(''),
  INFERENCE_HOST: z.string().min(1).default('127.0.0.1'),
  INFERENCE_PORT: whole(1, 65535).default(8000),
  INFERENCE_URL: z.string().startsWith('/', 'must be a request path such as /v2/models/m/infer').default('/'),
  INFERENCE_HEALTH_ENDPOINT: z.string().startsWith('/', 'must be a request path such as /v2/health/ready').default('/v2/health/ready'),
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
  NATS_URL: z.string().min(1).default('nats://127.0.0.1:4222'),
  NATS_TOKEN: optionalText,
  NATS_USER: optionalText,
  NATS_PASSWORD: optionalText,
  NATS_CREDS_FILE: optionalText,
  NATS_ACK_WAIT: duration('30s'),
  NATS_MAX_DELIVER: whole(1, 100).default(5),
  RESULT_RETENTION: duration('1h'),
  DRAIN_GRACE: duration('100s'),
  ASSET_MAX_BYTES: whole(1, Number.MAX_SAFE_INTEGER).default(5 * 1024 ** 3),
  ASSET_DOWNLOAD_TIMEOUT: duration('30m'),
  SPOOL_DIR: z.string().startsWith('/', 'must be an absolute path').default(join(tmpdir(), 'nvcf-sidecar-spool')),
  TERMINATION_LOG_PATH: z.string().default('/dev/termination-log'),
  WORKER_ID: optionalText,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
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
    nats: {
      servers: env.NATS_URL.split(',').map((s) => s.trim()).filter(Boolean),
      token: env.NATS_TOKEN,
      user: env.NATS_USER,
      pass: env.NATS_PASSWORD,
      credsFile: env.NATS_CREDS_FILE,
      ackWaitMs: env.NATS_ACK_WAIT,
      maxDeliver: env.NATS_MAX_DELIVER,
      resultRetentionMs: env.RESULT_RETENTION,
    },
    drainGraceMs: env.DRAIN_GRACE,
    terminationLogPath: env.TERMINATION_LOG_PATH,
    logLevel: env.LOG_LEVEL,
  };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Blank variables count as unset, as they do in a pod spec that templates them out. */
function present(env: NodeJS.ProcessEnv): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''));
}

export function loadWorkerConfig(env: NodeJS.ProcessEnv): WorkerConfig {
  const parsed = WorkerEnv.safeParse(present(env));
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0] ?? '?');
      const given = env[name];
      const shown = given === undefined || given === '' ? 'is required but not set' : `is "${given}"`;
      return `  ${name} ${shown}: ${issue.message}`;
    });
    throw new ConfigError(`invalid worker configuration (see docs/configuration.md):\n${lines.join('\n')}`);
  }
  const config = compile(parsed.data);
  if ((config.nats.user === undefined) !== (config.nats.pass === undefined)) {
    throw new ConfigError('invalid worker configuration: set NATS_USER and NATS_PASSWORD together, or neither');
  }
  return deepFreeze(config);
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
