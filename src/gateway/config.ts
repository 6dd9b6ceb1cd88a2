import { hostname } from 'node:os';
import { z } from 'zod';
import { ConfigError, deepFreeze, parseDurationMs } from '../config.js';

/**
 * Gateway configuration: command-line flags win over environment variables, which win over the
 * defaults. Parsed once, frozen. Every setting is listed in docs/harness.md; keep the two in step.
 */

const FLAGS: Record<string, string> = {
  '--port': 'GATEWAY_PORT',
  '--host': 'GATEWAY_HOST',
  '--public-url': 'GATEWAY_PUBLIC_URL',
  '--gateway-id': 'GATEWAY_ID',
  '--api-key': 'GATEWAY_API_KEY',
  '--nats-url': 'NATS_URL',
  '--max-request-bytes': 'GATEWAY_MAX_REQUEST_BYTES',
  '--queue-max': 'GATEWAY_QUEUE_MAX',
  '--log-level': 'LOG_LEVEL',
};

const duration = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((text, ctx) => {
      const ms = parseDurationMs(text);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration; write seconds ("30") or a Go duration ("30s", "1h")` });
        return z.NEVER;
      }
      return ms;
    });

const optionalText = z.string().trim().optional().transform((v) => (v ? v : undefined));

const GatewayEnv = z.object({
  GATEWAY_PORT: z.coerce.number().int().min(0).max(65535).default(8090),
  GATEWAY_HOST: z.string().min(1).default('127.0.0.1'),
  GATEWAY_PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  GATEWAY_ID: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/, 'may hold only letters, digits, "_" and "-" (at most 64)')
    .optional(),
  GATEWAY_API_KEY: optionalText,
  GATEWAY_MAX_REQUEST_BYTES: z.coerce.number().int().min(1024).default(16 * 1024 * 1024),
  GATEWAY_QUEUE_MAX: z.coerce.number().int().min(1).default(100_000),
  GATEWAY_ASSET_TTL: duration('24h'),
  GATEWAY_URL_TTL: duration('1h'),
  RESULT_RETENTION: duration('1h'),
  NATS_URL: z.string().min(1).default('nats://127.0.0.1:4222'),
  NATS_TOKEN: optionalText,
  NATS_USER: optionalText,
  NATS_PASSWORD: optionalText,
  NATS_CREDS_FILE: optionalText,
  NATS_ACK_WAIT: duration('30s'),
  NATS_MAX_DELIVER: z.coerce.number().int().min(1).max(100).default(5),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type GatewayConfig = Readonly<ReturnType<typeof compile>>;

function compile(env: z.output<typeof GatewayEnv>) {
  return {
    port: env.GATEWAY_PORT,
    host: env.GATEWAY_HOST,
    /** Base of the signed URLs handed to workers; undefined means "where this gateway listens". */
    publicUrl: env.GATEWAY_PUBLIC_URL?.replace(/\/+$/, ''),
    // Stable across restarts by default, so a restarted gateway finds its own pending results.
    gatewayId: env.GATEWAY_ID ?? `gw-${hostname().replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 60)}`,
    apiKey: env.GATEWAY_API_KEY,
    maxRequestBytes: env.GATEWAY_MAX_REQUEST_BYTES,
    queueMax: env.GATEWAY_QUEUE_MAX,
    assetTtlMs: env.GATEWAY_ASSET_TTL,
    urlTtlMs: env.GATEWAY_URL_TTL,
    resultRetentionMs: env.RESULT_RETENTION,
    nats: {
      servers: env.NATS_URL.split(',').map((s) => s.trim()).filter(Boolean),
      token: env.NATS_TOKEN,
      user: env.NATS_USER,
      pass: env.NATS_PASSWORD,
      credsFile: env.NATS_CREDS_FILE,
      ackWaitMs: env.NATS_ACK_WAIT,
      maxDeliver: env.NATS_MAX_DELIVER,
    },
    logLevel: env.LOG_LEVEL,
  };
}

/** Turns `--flag value` and `--flag=value` into the environment names they stand for. */
export function flagsToEnv(args: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const [flag, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    const name = FLAGS[flag];
    if (!name) throw new ConfigError(`unknown option "${flag}"; gateway options are ${Object.keys(FLAGS).join(', ')}`);
    const value = inline ?? args[++i];
    if (value === undefined) throw new ConfigError(`option ${flag} needs a value`);
    out[name] = value;
  }
  return out;
}

export function loadGatewayConfig(env: NodeJS.ProcessEnv, args: readonly string[] = []): GatewayConfig {
  const merged: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) if (value !== undefined && value !== '') merged[key] = value;
  Object.assign(merged, flagsToEnv(args));
  const parsed = GatewayEnv.safeParse(merged);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${String(issue.path[0] ?? '?')} is "${merged[String(issue.path[0])] ?? ''}": ${issue.message}`);
    throw new ConfigError(`invalid gateway configuration (see docs/harness.md):\n${lines.join('\n')}`);
  }
  const config = compile(parsed.data);
  if ((config.nats.user === undefined) !== (config.nats.pass === undefined)) {
    throw new ConfigError('invalid gateway configuration: set NATS_USER and NATS_PASSWORD together, or neither');
  }
  return deepFreeze(config);
}
