import type { IncomingMessage, ServerResponse } from 'node:http';
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

/**
 * Calls grouped by what they are for. Labels come from this fixed list, never from the path
 * itself, so ids in URLs cannot grow the number of series.
 */
const ROUTES: readonly (readonly [RegExp, string])[] = [
  [/^\/v2\/nvcf\/pexec\/functions\//, 'pexec'],
  [/^\/v2\/nvcf\/pexec\/status\//, 'status'],
  [/^\/v2\/nvcf\/assets(?:\/|$)/, 'assets'],
  [/^\/v2\/nvcf\/storage\//, 'storage'],
  [/^\/v2\/nvcf\/functions(?:\/|$)/, 'functions'],
  [/^\/v2\/nvcf\/queues\//, 'queues'],
  [/^\/v2\/nvcf\/deployments\//, 'deployments'],
  [/^\/console(?:\/|$)/, 'console'],
  [/^\/v1\/health\//, 'health'],
  [/^\/metrics$/, 'metrics'],
];
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE']);

/** Every metric the gateway exports, on a registry of its own (served at `/metrics` on the API port). */
export function createGatewayMetrics(registry = new Registry()) {
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    calls: new Counter({
      name: 'nvcf_gateway_http_requests_total',
      help: 'API calls answered, by route, method and status code ("none": the client left before any answer)',
      labelNames: ['route', 'method', 'code'],
      registers: [registry],
    }),
    inFlight: new Gauge({
      name: 'nvcf_gateway_http_in_flight',
      help: 'API calls not yet answered in full (long polls and event streams included), by route',
      labelNames: ['route'],
      registers: [registry],
    }),
  };
}

export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;

function routeOf(url: string | undefined): string {
  const path = (url ?? '/').split('?')[0]!;
  return ROUTES.find(([pattern]) => pattern.test(path))?.[1] ?? 'other';
}

/** Counts one call: in flight until its connection is done with it, then by its answer. */
export function trackCall(metrics: GatewayMetrics, req: IncomingMessage, res: ServerResponse): void {
  const route = routeOf(req.url);
  const method = METHODS.has(req.method ?? '') ? req.method! : 'other';
  metrics.inFlight.inc({ route });
  res.once('close', () => {
    metrics.inFlight.dec({ route });
    metrics.calls.inc({ route, method, code: res.headersSent ? String(res.statusCode) : 'none' });
  });
}

/**
 * Answers `GET /metrics` (Prometheus text format) and says whether it did. No API key is asked
 * for: the page holds counts and process figures only, and scrapers rarely carry one.
 */
export function answerMetrics(metrics: GatewayMetrics, req: IncomingMessage, res: ServerResponse): boolean {
  if (req.method !== 'GET' || routeOf(req.url) !== 'metrics') return false;
  metrics.registry.metrics().then(
    (text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
    (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${err.message}\n`),
  );
  return true;
}
