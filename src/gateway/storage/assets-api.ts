import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { UUID_PATTERN } from '../../shared/protocol.js';
import type { AssetRecord } from './asset-store.js';
import type { GatewayContext } from '../context.js';
import { HttpProblem, readJson, sendJson } from '../front/http.js';

const CreateAsset = z.object({
  contentType: z
    .string()
    .trim()
    .min(1, 'is required')
    .max(256)
    .regex(/^[^\s/]+\/[^\s]+/, 'must be a media type such as image/png'),
  description: z.string().max(1024).default(''),
});

const publicView = (a: AssetRecord) => ({ assetId: a.assetId, contentType: a.contentType, description: a.description });

/** POST /v2/nvcf/assets: an id and a signed upload URL; the upload must use the same Content-Type. */
export async function createAsset(ctx: GatewayContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const parsed = CreateAsset.safeParse(await readJson(req));
  if (!parsed.success)
    throw new HttpProblem(
      400,
      `invalid asset request: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'body'} ${i.message}`).join('; ')}`,
    );
  const record: AssetRecord = { assetId: randomUUID(), ...parsed.data, createdAt: Date.now(), uploaded: false };
  await ctx.assets.put(record);
  const uploadUrl = ctx.signer.url({ method: 'PUT', kind: 'assets', id: record.assetId }, ctx.config.urlTtlMs);
  ctx.log.info({ assetId: record.assetId }, 'asset created');
  sendJson(res, 200, { ...publicView(record), uploadUrl });
}

export async function listAssets(ctx: GatewayContext, _req: IncomingMessage, res: ServerResponse): Promise<void> {
  sendJson(res, 200, { assets: (await ctx.assets.list()).map(publicView) });
}

export async function deleteAsset(ctx: GatewayContext, res: ServerResponse, assetId: string): Promise<void> {
  const record = await ctx.assets.get(assetId);
  if (!record) throw new HttpProblem(404, `asset ${assetId} not found`);
  await ctx.assets.delete(record.assetId);
  await ctx.store.delete('assets', record.assetId);
  ctx.log.info({ assetId: record.assetId }, 'asset deleted');
  res.writeHead(204).end();
}

/**
 * The ids in NVCF-INPUT-ASSET-REFERENCES, each checked: a malformed id is the caller's 400, a
 * missing or never-uploaded asset is a 404, both before anything is queued.
 */
export async function resolveAssetReferences(ctx: GatewayContext, header: string | undefined): Promise<AssetRecord[]> {
  if (!header) return [];
  const ids = header
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (ids.length > 64)
    throw new HttpProblem(400, `NVCF-INPUT-ASSET-REFERENCES names ${ids.length} assets; at most 64 are allowed`);
  const bad = ids.find((id) => !UUID_PATTERN.test(id));
  if (bad !== undefined)
    throw new HttpProblem(400, `NVCF-INPUT-ASSET-REFERENCES: "${bad.slice(0, 64)}" is not an asset id (a UUID)`);
  const records: AssetRecord[] = [];
  for (const id of new Set(ids.map((i) => i.toLowerCase()))) {
    const record = await ctx.assets.get(id);
    if (!record?.uploaded || !(await ctx.store.has('assets', id)))
      throw new HttpProblem(
        404,
        `asset ${id} not found${record && !record.uploaded ? ' (created but never uploaded)' : ''}`,
      );
    records.push(record);
  }
  return records;
}
