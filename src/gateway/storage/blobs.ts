import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { UUID_PATTERN } from '../../shared/protocol.js';
import type { GatewayContext } from '../context.js';
import { HttpProblem, requestHeader } from '../front/http.js';
import type { ObjectKind } from './signing.js';

const KINDS = new Set<ObjectKind>(['assets', 'results', 'bodies']);

function target(kind: string, id: string): { kind: ObjectKind; id: string } {
  if (!KINDS.has(kind as ObjectKind) || !UUID_PATTERN.test(id)) throw new HttpProblem(404, 'no such object');
  return { kind: kind as ObjectKind, id: id.toLowerCase() };
}

function verify(
  ctx: GatewayContext,
  method: 'GET' | 'PUT',
  kind: ObjectKind,
  id: string,
  query: URLSearchParams,
): void {
  const problem = ctx.signer.check({ method, kind, id }, query);
  if (problem) throw new HttpProblem(403, `${problem}; ask the API for a new URL`);
}

/**
 * GET on a signed URL: an asset for a worker, a request body too big for a frame, or a large
 * result (the 302's Location) for the client. Streams from the store with its length.
 */
export async function downloadObject(
  ctx: GatewayContext,
  res: ServerResponse,
  kindName: string,
  idText: string,
  query: URLSearchParams,
): Promise<void> {
  const { kind, id } = target(kindName, idText);
  verify(ctx, 'GET', kind, id, query);
  const object = await ctx.store.get(kind, id);
  if (!object)
    throw new HttpProblem(404, `the ${kind.slice(0, -1)} ${id} is not stored (never uploaded, deleted, or expired)`);
  res.writeHead(200, { 'content-type': object.contentType, 'content-length': object.size });
  await pipeline(object.body, res).catch((err: Error) =>
    ctx.log.warn({ kind, id, err: err.message }, 'object download broke off'),
  );
}

/**
 * PUT on a signed URL: an asset from the client (its Content-Type must be the one declared at
 * creation) or a large result zip from a worker (which may retry; the last complete PUT wins).
 */
export async function uploadObject(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
  kindName: string,
  idText: string,
  query: URLSearchParams,
): Promise<void> {
  const { kind, id } = target(kindName, idText);
  verify(ctx, 'PUT', kind, id, query);
  const contentType = requestHeader(req, 'content-type')?.trim() ?? '';
  if (kind === 'assets') {
    const record = await ctx.assets.get(id);
    if (!record) throw new HttpProblem(404, `asset ${id} not found (deleted or expired)`);
    if (contentType.toLowerCase() !== record.contentType.toLowerCase()) {
      throw new HttpProblem(
        400,
        `Content-Type "${contentType}" does not match the asset's declared "${record.contentType}"`,
      );
    }
    const size = await storeUpload(ctx, kind, id, req, record.contentType);
    if (size === undefined) return;
    await ctx.assets.put({ ...record, uploaded: true, size });
    ctx.log.info({ assetId: id, size }, 'asset uploaded');
  } else if (kind === 'results') {
    const size = await storeUpload(ctx, kind, id, req, contentType || 'application/zip');
    if (size === undefined) return;
    ctx.log.info({ requestId: id, size }, 'large result stored');
  } else {
    throw new HttpProblem(405, 'request bodies are written by the gateway only');
  }
  res.writeHead(200, { 'content-length': 0 }).end();
}

/**
 * Stores an upload's body, or undefined when its sender broke it off before the end: nothing is
 * stored and nobody is left to answer. That is the sender's choice or trouble (a worker drops a
 * try whose output files changed and uploads the zip again, a client goes away), not a failure
 * of the gateway, so it is no error in the gateway's log.
 */
async function storeUpload(
  ctx: GatewayContext,
  kind: ObjectKind,
  id: string,
  req: IncomingMessage,
  contentType: string,
): Promise<number | undefined> {
  try {
    return await ctx.store.put(kind, id, req, contentType);
  } catch (err) {
    if (req.complete || !req.destroyed) throw err;
    ctx.log.info({ kind, id, err: (err as Error).message }, 'upload broken off by its sender; nothing stored');
    return undefined;
  }
}
