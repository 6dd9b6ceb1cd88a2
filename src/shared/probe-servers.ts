import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface Readiness {
  /** Empty when ready; otherwise the reasons it is not. */
  notReadyReasons(): string[];
}

/**
 * Kubernetes probes on HEALTH_PORT: live while the process runs, ready while the container is
 * healthy, NATS is connected and the worker is not draining.
 */
export function createHealthServer(readiness: Readiness): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { status: 'method not allowed' });
    if (path === '/v1/health/live') return send(res, 200, { status: 'live' });
    if (path === '/v1/health/ready') {
      const reasons = readiness.notReadyReasons();
      return reasons.length === 0
        ? send(res, 200, { status: 'ready' })
        : send(res, 503, { status: 'not ready', reasons });
    }
    send(res, 404, { status: 'not found' });
  });
}

export function createMetricsServer(registry: Registry): Server {
  return createServer((req, res) => {
    if ((req.url ?? '/').split('?')[0] !== '/metrics') return send(res, 404, { status: 'not found' });
    registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': registry.contentType });
        res.end(text);
      },
      (err: Error) => send(res, 500, { status: 'error', detail: err.message }),
    );
  });
}

function send(res: import('node:http').ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Listens on 127.0.0.1 when asked for port 0 (tests), on every interface otherwise (pods). */
export async function listen(server: Server, port: number, host?: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host ?? (port === 0 ? '127.0.0.1' : undefined), () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

export async function closeServer(server: Server): Promise<void> {
  if (!server.listening) return;
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}
