import type { IncomingMessage, ServerResponse } from 'node:http';
import { clientOf, setCaller } from './api-keys.js';
import { createAsset, deleteAsset, listAssets } from '../storage/assets-api.js';
import { downloadObject, uploadObject } from '../storage/blobs.js';
import type { GatewayContext } from '../context.js';
import { answerPreflight, exposeToBrowsers, isPreflight } from './cors.js';
import { queueLengths, queuePosition } from '../functions/functions.js';
import { consoleRoutes } from '../console/serve.js';
import { lifecycleRoutes } from '../lifecycle/routes.js';
import { HttpProblem, requestHeader, sendJson, sendProblem, type Route } from './http.js';
import { invokeFunction, requestStatus } from '../invocations/pexec.js';
import { unreachableNats } from '../../shared/nats-errors.js';
import { containerPathOf, routedTarget } from './routing.js';

const seg = '([^/]+)';
const routes: Route[] = [
  {
    method: 'GET',
    pattern: /^\/v1\/health\/(?:live|ready)$/,
    handler: (_c, _q, res) => sendJson(res, 200, { status: 'ok' }),
    open: true,
  },
  {
    method: 'POST',
    pattern: new RegExp(`^/v2/nvcf/pexec/functions/${seg}$`),
    handler: (c, q, s, [f]) => invokeFunction(c, q, s, f!),
  },
  {
    method: 'POST',
    pattern: new RegExp(`^/v2/nvcf/pexec/functions/${seg}/versions/${seg}$`),
    handler: (c, q, s, [f, v]) => invokeFunction(c, q, s, f!, v),
  },
  {
    method: 'GET',
    pattern: new RegExp(`^/v2/nvcf/pexec/status/${seg}$`),
    handler: (c, q, s, [r]) => requestStatus(c, q, s, r!),
  },
  { method: 'POST', pattern: /^\/v2\/nvcf\/assets$/, handler: (c, q, s) => createAsset(c, q, s) },
  { method: 'GET', pattern: /^\/v2\/nvcf\/assets$/, handler: (c, q, s) => listAssets(c, q, s) },
  {
    method: 'DELETE',
    pattern: new RegExp(`^/v2/nvcf/assets/${seg}$`),
    handler: (c, _q, s, [a]) => deleteAsset(c, s, a!),
  },
  ...lifecycleRoutes,
  ...consoleRoutes,
  {
    method: 'GET',
    pattern: new RegExp(`^/v2/nvcf/queues/functions/${seg}$`),
    handler: (c, _q, s, [f]) => queueLengths(c, s, f!),
  },
  {
    method: 'GET',
    pattern: new RegExp(`^/v2/nvcf/queues/functions/${seg}/versions/${seg}$`),
    handler: (c, _q, s, [f, v]) => queueLengths(c, s, f!, v),
  },
  {
    method: 'GET',
    pattern: new RegExp(`^/v2/nvcf/queues/${seg}/position$`),
    handler: (c, q, s, [r]) => queuePosition(c, q, s, r!),
  },
  {
    method: 'GET',
    pattern: new RegExp(`^/v2/nvcf/storage/${seg}/${seg}$`),
    handler: (c, _q, s, [k, i], query) => downloadObject(c, s, k!, i!, query),
    open: true,
  },
  {
    method: 'PUT',
    pattern: new RegExp(`^/v2/nvcf/storage/${seg}/${seg}$`),
    handler: (c, q, s, [k, i], query) => uploadObject(c, q, s, k!, i!, query),
    open: true,
  },
];

/** True when the call may go on: no keys are configured, or it names a client's key. */
function authorized(ctx: GatewayContext, req: IncomingMessage): boolean {
  if (ctx.config.apiClients.length === 0) return true;
  const client = clientOf(ctx.config.apiClients, requestHeader(req, 'authorization'));
  if (client) setCaller(req, client);
  return client !== undefined;
}

/**
 * A wrong key is refused before a byte of the body is read, and the connection is closed after
 * the answer rather than drained, so a caller without a key cannot hold it by trickling a body.
 */
function refuseUnauthorized(): never {
  throw new HttpProblem(401, 'missing or wrong API key: send Authorization: Bearer <key>', {
    'WWW-Authenticate': 'Bearer',
    Connection: 'close',
  });
}

/**
 * A body that stops arriving for this long has its connection cut. Only a call that announces a
 * body is timed, and only until its body has been read (or drained after a refusal): the socket
 * timer also counts a quiet response, and a long poll is rightly quiet for minutes.
 */
function boundBodyIdleTime(req: IncomingMessage, ms: number): void {
  const announcesBody =
    Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
  if (ms <= 0 || req.complete || !announcesBody) return;
  const socket = req.socket;
  socket.setTimeout(ms);
  const stop = () => socket.setTimeout(0);
  req.once('end', stop);
  req.once('close', stop);
}

/** Finds the route, checks the key, runs the handler, and turns anything thrown into problem+json. */
export async function route(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (isPreflight(req)) return answerPreflight(ctx.config, req, res);
  exposeToBrowsers(ctx.config, req, res);
  boundBodyIdleTime(req, ctx.config.bodyIdleTimeoutMs);
  const url = new URL(req.url ?? '/', 'http://gateway');
  const target = routedTarget(req, url.pathname);
  let path = url.pathname;
  try {
    // A routed call's path is the container's business and goes to it as sent.
    if (!target) path = decodeURIComponent(url.pathname);
  } catch {
    return sendProblem(res, 400, 'the request path is not valid percent-encoding');
  }
  const candidates = target ? [] : routes.filter((r) => r.pattern.test(path));
  const found = candidates.find((r) => r.method === req.method);
  try {
    if (target) {
      if (!authorized(ctx, req)) refuseUnauthorized();
      return await invokeFunction(ctx, req, res, target.functionId, target.versionId, containerPathOf(req));
    }
    if (!found) {
      if (candidates.length > 0)
        throw new HttpProblem(405, `${req.method} is not allowed on ${path}`, {
          Allow: candidates.map((r) => r.method).join(', '),
        });
      throw new HttpProblem(404, `no API at ${path.slice(0, 200)}`);
    }
    if (!found.open && !authorized(ctx, req)) refuseUnauthorized();
    const params = found.pattern.exec(path)!.slice(1);
    await found.handler(ctx, req, res, params, url.searchParams);
  } catch (err) {
    const requestId = res.getHeader('NVCF-REQID') as string | undefined;
    if (err instanceof HttpProblem) {
      ctx.log.info(
        { method: req.method, path: path.slice(0, 200), status: err.status, detail: err.message, requestId },
        'request refused',
      );
      return sendProblem(
        res,
        err.status,
        err.message,
        { ...err.headers, ...(requestId ? { 'NVCF-REQID': requestId, 'NVCF-STATUS': 'errored' } : {}) },
        requestId,
      );
    }
    const natsCode = unreachableNats(err);
    if (natsCode && !requestId) {
      ctx.log.warn(
        { method: req.method, path: path.slice(0, 200), err: (err as Error).message },
        'NATS unreachable; answering 503',
      );
      return sendProblem(res, 503, `the gateway cannot reach NATS right now (${natsCode}); retry later`, {
        'Retry-After': '1',
      });
    }
    ctx.log.error(
      { method: req.method, path: path.slice(0, 200), err: (err as Error).message, requestId },
      'request failed inside the gateway',
    );
    sendProblem(
      res,
      500,
      `the gateway failed: ${(err as Error).message}`,
      requestId ? { 'NVCF-REQID': requestId, 'NVCF-STATUS': 'errored' } : {},
      requestId,
    );
  }
}
