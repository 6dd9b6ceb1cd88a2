import type { IncomingMessage, ServerResponse } from 'node:http';
import type { GatewayConfig } from '../config.js';
import { requestHeader } from './http.js';

/**
 * Browsers, as NVCF's invocation service lets them in: a preflight is answered by the gateway
 * itself, without the API key (a browser never sends credentials on one), on every path, API
 * and routed calls alike; every answer lets the page read the headers a client polls with.
 */

/** What a page may read of an answer; the rest stays hidden from scripts. */
const EXPOSED_HEADERS = [
  'NVCF-REQID',
  'NVCF-STATUS',
  'NVCF-PERCENT-COMPLETE',
  'NVCF-FUNCTION-ID',
  'NVCF-FUNCTION-VERSION-ID',
  'Location',
  'Retry-After',
];
const ALLOWED_METHODS = 'GET, POST, PUT, PATCH, DELETE, OPTIONS, HEAD';
/** Always allowed; whatever else the preflight asks for (any `nvcf-*` header) is allowed too. */
const ALLOWED_HEADERS = [
  'authorization',
  'content-type',
  'accept',
  'function-id',
  'function-version-id',
  'nvcf-poll-seconds',
  'nvcf-input-asset-references',
  'nvcf-feature-disable-worker-compatibility',
];
const PREFLIGHT_MAX_AGE_S = 600;

function allowedOrigin(config: GatewayConfig, origin: string | undefined): string | undefined {
  if (!origin) return undefined;
  if (config.corsOrigins === '*') return '*';
  return config.corsOrigins.includes(origin) ? origin : undefined;
}

/** A browser's question before a call it may not make unasked. */
export function isPreflight(req: IncomingMessage): boolean {
  return (
    req.method === 'OPTIONS' &&
    requestHeader(req, 'origin') !== undefined &&
    requestHeader(req, 'access-control-request-method') !== undefined
  );
}

/** Sets the headers every answer to a browser's call carries. */
export function exposeToBrowsers(config: GatewayConfig, req: IncomingMessage, res: ServerResponse): void {
  const allowed = allowedOrigin(config, requestHeader(req, 'origin'));
  if (config.corsOrigins !== '*') res.setHeader('Vary', 'Origin');
  if (!allowed) return;
  res.setHeader('Access-Control-Allow-Origin', allowed);
  res.setHeader('Access-Control-Expose-Headers', EXPOSED_HEADERS.join(', '));
}

/** Answers a preflight: 204 with what may be sent, or 403 for an origin not on the list. */
export function answerPreflight(config: GatewayConfig, req: IncomingMessage, res: ServerResponse): void {
  const allowed = allowedOrigin(config, requestHeader(req, 'origin'));
  if (config.corsOrigins !== '*') res.setHeader('Vary', 'Origin');
  if (!allowed) {
    res.writeHead(403, { 'content-type': 'text/plain', 'content-length': 27 }).end('this origin is not allowed\n');
    return;
  }
  const asked = (requestHeader(req, 'access-control-request-headers') ?? '')
    .split(',')
    .map((h) => h.trim().toLowerCase())
    .filter((h) => /^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(h));
  res.writeHead(204, {
    'Access-Control-Allow-Origin': allowed,
    'Access-Control-Allow-Methods': ALLOWED_METHODS,
    'Access-Control-Allow-Headers': [...new Set([...ALLOWED_HEADERS, ...asked])].join(', '),
    'Access-Control-Max-Age': String(PREFLIGHT_MAX_AGE_S),
    'content-length': 0,
  });
  res.end();
}
