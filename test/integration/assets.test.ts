import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { problemOf } from '../support/client.js';
import { invocationFor } from '../support/env.js';
import { useRig } from '../support/rig.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('input assets', () => {
  const rig = useRig({ storage: true, worker: { env: { MAX_REQUEST_CONCURRENCY: '4' } } });

  it('downloads two assets, one of 50 MiB, byte-exact to the paths the container is told', async () => {
    const small = randomBytes(1000);
    const big = randomBytes(50 * 1024 * 1024);
    const ids = [randomUUID(), randomUUID()];
    await writeFile(rig.storage.path(ids[0]!), small);
    await writeFile(rig.storage.path(ids[1]!), big);
    rig.container.route = async (req, res) => {
      const dir = String(req.headers['nvcf-asset-dir']);
      const listed = String(req.headers['nvcf-function-asset-ids']).split(',');
      const hashes = await Promise.all(listed.map(async (id) => sha256(await readFile(join(dir, id)))));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ dir, listed, hashes }));
    };
    const invocation = invocationFor(rig.worker.env, {
      assets: ids.map((assetId) => ({
        assetId,
        url: rig.storage.url(assetId),
        contentType: 'application/octet-stream',
      })),
    });
    const result = await rig.client.result(await rig.client.invoke(invocation), 60_000);
    expect(result.status).toBe(200);
    const seen = JSON.parse(result.body.toString());
    expect(seen.dir).toBe(join(rig.worker.env.BASE_ASSET_DIR!, invocation.requestId));
    expect(seen.listed).toEqual(ids);
    expect(seen.hashes).toEqual([sha256(small), sha256(big)]);
  });

  it('answers a missing asset with the 500 problem and never calls the container', async () => {
    const before = rig.container.seen.length;
    const assetId = randomUUID();
    const invocation = invocationFor(rig.worker.env, {
      assets: [{ assetId, url: rig.storage.url(assetId), contentType: 'image/png' }],
    });
    const result = await rig.client.result(await rig.client.invoke(invocation));
    expect(result.status).toBe(500);
    expect(problemOf(result.body)).toMatchObject({
      type: 'urn:nvcf-worker-service:problem-details:internal-server-error',
      detail: `Internal error while downloading assets: asset ${assetId} answered 404`,
    });
    expect(rig.container.seen.length).toBe(before);
  });

  it('rejects an asset id that is not a UUID before any path is built from it', async () => {
    const invocation = invocationFor(rig.worker.env, {
      assets: [{ assetId: '../../etc/passwd', url: rig.storage.url('x'), contentType: 'text/plain' }],
    });
    const result = await rig.client.result(await rig.client.invoke(invocation));
    expect(result.status).toBe(400);
    expect(String(problemOf(result.body).detail)).toMatch(/assets\.0\.assetId must be a UUID/);
  });
});

describe('asset limits', () => {
  const rig = useRig({ storage: true, worker: { env: { ASSET_MAX_BYTES: '1024', ASSET_DOWNLOAD_TIMEOUT: '500ms' } } });

  it('refuses an asset over ASSET_MAX_BYTES, and one slower than ASSET_DOWNLOAD_TIMEOUT, with clear errors', async () => {
    const slow = await rig.serve((_req, res) => void res.writeHead(200, { 'content-length': 10 }).write('12345'));
    const assetId = randomUUID();
    await writeFile(rig.storage.path(assetId), randomBytes(2048));
    const result = await rig.client.result(
      await rig.client.invoke(
        invocationFor(rig.worker.env, { assets: [{ assetId, url: rig.storage.url(assetId), contentType: 'x/y' }] }),
      ),
    );
    expect(result.status).toBe(500);
    expect(String(problemOf(result.body).detail)).toMatch(/over the 1024-byte limit \(ASSET_MAX_BYTES\)/);
    const slowId = randomUUID();
    const url = slow.url('/asset');
    const timedOut = await rig.client.result(
      await rig.client.invoke(
        invocationFor(rig.worker.env, { assets: [{ assetId: slowId, url, contentType: 'x/y' }] }),
      ),
    );
    expect(timedOut.status).toBe(500);
    expect(String(problemOf(timedOut.body).detail)).toBe(
      `Internal error while downloading assets: asset ${slowId} took longer than 0.5s (ASSET_DOWNLOAD_TIMEOUT)`,
    );
    expect(rig.container.seen).toHaveLength(0);
  });
});
