import { z } from 'zod';
import { NvcfError } from './errors.js';
import { DEFAULT_STREAM_REPLICAS } from './protocol.js';

/**
 * The building blocks every command's configuration shares: how durations, numbers, optional
 * text and the NATS connection settings are read from the environment, and how a bad value is
 * reported. Each command (worker, gateway) composes its own schema from these and parses once.
 */

/** A bad setting: the process exits with it, since a restart with the same environment fails the same way. */
export class ConfigError extends NvcfError {
  override name = 'ConfigError';
  readonly retry = 'give-up';
}

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

export const duration = (fallback: string) =>
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

export const whole = (min: number, max: number) =>
  z.coerce
    .number({ error: `must be a whole number from ${min} to ${max}` })
    .int(`must be a whole number from ${min} to ${max}`)
    .min(min, `must be at least ${min}`)
    .max(max, `must be at most ${max}`);

export const port = (fallback: number) => whole(0, 65535).default(fallback);
export const optionalText = z
  .string()
  .trim()
  .optional()
  .transform((v) => (v ? v : undefined));
export const flag = z
  .stringbool({ truthy: ['true', '1', 'yes', 'on'], falsy: ['false', '0', 'no', 'off', ''] })
  .default(false);
export const logLevel = z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info');

/** The NATS variables both the worker and the gateway read. */
export const natsEnv = {
  NATS_URL: z.string().min(1).default('nats://127.0.0.1:4222'),
  NATS_TOKEN: optionalText,
  NATS_USER: optionalText,
  NATS_PASSWORD: optionalText,
  NATS_CREDS_FILE: optionalText,
  NATS_ACK_WAIT: duration('30s'),
  NATS_MAX_DELIVER: whole(1, 100).default(5),
  NATS_STREAM_REPLICAS: whole(1, 5).default(DEFAULT_STREAM_REPLICAS),
  RESULT_RETENTION: duration('1h'),
};

type NatsEnv = z.output<z.ZodObject<typeof natsEnv>>;

export function natsSettings(env: NatsEnv) {
  return {
    servers: env.NATS_URL.split(',')
      .map((s) => s.trim())
      .filter(Boolean),
    token: env.NATS_TOKEN,
    user: env.NATS_USER,
    pass: env.NATS_PASSWORD,
    credsFile: env.NATS_CREDS_FILE,
    ackWaitMs: env.NATS_ACK_WAIT,
    maxDeliver: env.NATS_MAX_DELIVER,
    /** Replicas of every stream and bucket this process creates; 3 on a three-node cluster. */
    replicas: env.NATS_STREAM_REPLICAS,
    resultRetentionMs: env.RESULT_RETENTION,
  };
}

/** Blank variables count as unset, as they do in a pod spec that templates them out. */
export function present(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && e[1] !== ''),
  );
}

/**
 * Parses `input` with `schema`, or throws a ConfigError naming every bad variable, its value and
 * the fix, pointing at the document that lists them.
 */
export function parseEnv<S extends z.ZodType>(
  schema: S,
  input: Record<string, string>,
  what: string,
  docs: string,
): z.output<S> {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const name = String(issue.path[0] ?? '?');
    const given = input[name];
    const shown = given === undefined ? 'is required but not set' : `is "${given}"`;
    return `  ${name} ${shown}: ${issue.message}`;
  });
  throw new ConfigError(`invalid ${what} configuration (see ${docs}):\n${lines.join('\n')}`);
}

/** Checks the settings that only make sense together. */
export function checkNatsCredentials(
  nats: { user?: string | undefined; pass?: string | undefined },
  what: string,
): void {
  if ((nats.user === undefined) !== (nats.pass === undefined)) {
    throw new ConfigError(`invalid ${what} configuration: set NATS_USER and NATS_PASSWORD together, or neither`);
  }
}

export function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
