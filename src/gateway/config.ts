import { hostname } from 'node:os';
import { z } from 'zod';
import { UsageError, parseCommandArgs } from '../shared/command-line.js';
import { parseApiClients } from './front/api-keys.js';
import {
  ConfigError,
  checkNatsCredentials,
  deepFreeze,
  duration,
  logLevel,
  natsEnv,
  natsSettings,
  optionalText,
  parseEnv,
  present,
  whole,
} from '../shared/env.js';

/**
 * Gateway configuration: command-line flags win over environment variables, which win over the
 * defaults. Parsed once, frozen. Every setting is listed in docs/harness.md; keep the two in step.
 */

export const GATEWAY_FLAGS: Record<string, string> = {
  '--port': 'GATEWAY_PORT',
  '--host': 'GATEWAY_HOST',
  '--public-url': 'GATEWAY_PUBLIC_URL',
  '--gateway-id': 'GATEWAY_ID',
  '--api-key': 'GATEWAY_API_KEY',
  '--api-keys': 'GATEWAY_API_KEYS',
  '--cors-origins': 'GATEWAY_CORS_ORIGINS',
  '--region': 'GATEWAY_INVOCATION_REGION',
  '--nats-url': 'NATS_URL',
  '--max-request-bytes': 'GATEWAY_MAX_REQUEST_BYTES',
  '--queue-max': 'GATEWAY_QUEUE_MAX',
  '--log-level': 'LOG_LEVEL',
};

const GatewayEnv = z.object({
  GATEWAY_PORT: whole(0, 65535).default(8090),
  GATEWAY_HOST: z.string().min(1).default('127.0.0.1'),
  GATEWAY_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  GATEWAY_ID: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'may hold only letters, digits, "_" and "-" (at most 64)')
    .optional(),
  GATEWAY_API_KEY: optionalText,
  GATEWAY_API_KEYS: optionalText,
  GATEWAY_CORS_ORIGINS: z.string().trim().default('*'),
  GATEWAY_INVOCATION_REGION: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'may hold only letters, digits, ".", "_" and "-" (at most 64)')
    .default('local'),
  GATEWAY_HEADERS_TIMEOUT: duration('10s'),
  GATEWAY_BODY_IDLE_TIMEOUT: duration('30s'),
  GATEWAY_MAX_REQUEST_BYTES: whole(1024, Number.MAX_SAFE_INTEGER).default(16 * 1024 * 1024),
  GATEWAY_QUEUE_MAX: whole(1, Number.MAX_SAFE_INTEGER).default(100_000),
  GATEWAY_ASSET_TTL: duration('24h'),
  GATEWAY_URL_TTL: duration('1h'),
  ...natsEnv,
  LOG_LEVEL: logLevel,
});

export type GatewayConfig = Readonly<ReturnType<typeof compile>>;

function compile(env: z.output<typeof GatewayEnv>) {
  return {
    port: env.GATEWAY_PORT,
    host: env.GATEWAY_HOST,
    /** Base of the signed URLs handed to workers; undefined means "where this gateway listens". */
    publicUrl: env.GATEWAY_PUBLIC_URL?.replace(/\/+$/, ''),
    // Stable across restarts by default, so a restarted gateway finds its own pending results.
    gatewayId:
      env.GATEWAY_ID ??
      `gw-${hostname()
        .replace(/[^A-Za-z0-9_-]/g, '_')
        .slice(0, 60)}`,
    /** Empty: no key is asked for. Otherwise every API call names one of these clients. */
    apiClients: parseApiClients(env.GATEWAY_API_KEY, env.GATEWAY_API_KEYS),
    /** `*` for any origin, else the exact origins browsers may call from. */
    corsOrigins: corsOrigins(env.GATEWAY_CORS_ORIGINS),
    /** Sent to the container as NVCF-INVOCATION-REGION, as NVCF's invocation service does. */
    invocationRegion: env.GATEWAY_INVOCATION_REGION,
    /** How long a client may take to send its request headers. */
    headersTimeoutMs: env.GATEWAY_HEADERS_TIMEOUT,
    /** How long a request body may stop arriving before the connection is cut (0: never). */
    bodyIdleTimeoutMs: env.GATEWAY_BODY_IDLE_TIMEOUT,
    maxRequestBytes: env.GATEWAY_MAX_REQUEST_BYTES,
    queueMax: env.GATEWAY_QUEUE_MAX,
    assetTtlMs: env.GATEWAY_ASSET_TTL,
    urlTtlMs: env.GATEWAY_URL_TTL,
    resultRetentionMs: env.RESULT_RETENTION,
    nats: natsSettings(env),
    logLevel: env.LOG_LEVEL,
  };
}

function corsOrigins(text: string): '*' | string[] {
  const list = text
    .split(',')
    .map((o) => o.trim().replace(/\/+$/, ''))
    .filter(Boolean);
  if (list.length === 0 || list.includes('*')) return '*';
  for (const origin of list)
    if (!/^https?:\/\/[^/\s]+$/.test(origin))
      throw new ConfigError(`GATEWAY_CORS_ORIGINS: "${origin}" is not an origin such as https://app.example.com`);
  return list;
}

const GATEWAY_OPTIONS = Object.fromEntries(
  Object.keys(GATEWAY_FLAGS).map((flag) => [flag.slice(2), { type: 'string' as const }]),
);

/**
 * The gateway's command line: its flags (`--flag value` or `--flag=value`) as the environment
 * names they stand for, and whether `--help` or `--version` was asked for. It takes no
 * arguments; a mistake is a UsageError naming the flag.
 */
export function readGatewayArgs(args: readonly string[]): {
  flags: Record<string, string>;
  help: boolean;
  version: boolean;
} {
  let parsed;
  try {
    parsed = parseCommandArgs(args, GATEWAY_OPTIONS);
  } catch (err) {
    // A mistyped or incomplete flag: the list of the right ones is the fix.
    if (err instanceof UsageError)
      throw new UsageError(`${err.message}; gateway options are ${Object.keys(GATEWAY_FLAGS).join(', ')}`);
    throw err;
  }
  const { values, positionals, help, version } = parsed;
  if (positionals.length > 0)
    throw new UsageError(`unexpected argument "${positionals[0]}"; the gateway takes only options`);
  const flags: Record<string, string> = {};
  for (const [flag, name] of Object.entries(GATEWAY_FLAGS)) {
    const value = (values as Record<string, string | undefined>)[flag.slice(2)];
    if (value !== undefined) flags[name] = value;
  }
  return { flags, help, version };
}

/** The gateway's settings: `flags` (from readGatewayArgs) over `env` over the defaults. */
export function loadGatewayConfig(env: NodeJS.ProcessEnv, flags: Record<string, string> = {}): GatewayConfig {
  const merged = { ...present(env), ...flags };
  const config = compile(parseEnv(GatewayEnv, merged, 'gateway', 'docs/harness.md'));
  checkNatsCredentials(config.nats, 'gateway');
  return deepFreeze(config);
}
