import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { extractZip } from '../../src/invoke/unzip.js';
import { useRig } from '../support/rig.js';

interface CreatedAsset {
  assetId: string;
  uploadUrl: string;
  contentType: string;
  description: string;
}

describe('assets and large results through the gateway', () => {
  const rig = useRig({ worker: { env: { LOG_LEVEL: 'warn' } }, gateway: { awaitStatus: 'ACTIVE' } });
  /** A pexec call whose 302 is kept, not followed. */
  const pexecKeeping302 = () =>
    fetch(`${rig.gateway.url}/v2/nvcf/pexec/functions/${rig.worker.env.FUNCTION_ID}`, {
      method: 'POST',
      body: '{}',
      redirect: 'manual',
    });
  /** Fetches a result zip from its Location and unpacks it: the folder, and the names it holds. */
  const unpacked = async (location: string) => {
    const zip = await fetch(location);
    expect(zip.status).toBe(200);
    const dir = await mkdtemp(join(tmpdir(), 'nvcf-zip-'));
    await writeFile(join(dir, 'result.zip'), Buffer.from(await zip.arrayBuffer()));
    const files = await extractZip(join(dir, 'result.zip'), join(dir, 'out'));
    return { out: join(dir, 'out'), files: files.sort() };
  };

  const createAsset = async (contentType: string, description = 'test asset'): Promise<CreatedAsset> => {
    const res = await fetch(`${rig.gateway.url}/v2/nvcf/assets`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ contentType, description }),
    });
    expect(res.status).toBe(200);
    return (await res.json()) as CreatedAsset;
  };

  it('hands the container the byte-exact uploaded file at NVCF-ASSET-DIR/<assetId>', async () => {
    const bytes = randomBytes(2 * 1024 * 1024 + 17);
    const asset = await createAsset('image/png', 'a picture');
    expect(asset).toMatchObject({ contentType: 'image/png', description: 'a picture' });
    const put = await fetch(asset.uploadUrl, { method: 'PUT', headers: { 'content-type': 'image/png' }, body: bytes });
    expect(put.status).toBe(200);
    rig.container.route = async (req, res) => {
      const file = await readFile(join(String(req.headers['nvcf-asset-dir']), asset.assetId));
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(file);
    };
    const res = await fetch(`${rig.gateway.url}/v2/nvcf/pexec/functions/${rig.worker.env.FUNCTION_ID}`, {
      method: 'POST',
      headers: { 'NVCF-INPUT-ASSET-REFERENCES': ` ${asset.assetId} ,` },
      body: '{}',
    });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(bytes)).toBe(true);
    expect(rig.container.seen.at(-1)!.headers['nvcf-function-asset-ids']).toBe(asset.assetId);
  });

  it('refuses an upload whose Content-Type differs from the declared one', async () => {
    const asset = await createAsset('image/png');
    const res = await fetch(asset.uploadUrl, { method: 'PUT', headers: { 'content-type': 'image/jpeg' }, body: 'x' });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { detail: string }).detail).toContain('does not match');
  });

  it('refuses an upload URL that was altered, or reused for another asset', async () => {
    const first = await createAsset('text/plain');
    const second = await createAsset('text/plain');
    const tampered = first.uploadUrl.replace(
      /signature=([0-9a-f])/,
      (_m, c: string) => `signature=${c === '0' ? '1' : '0'}`,
    );
    expect(
      (await fetch(tampered, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'x' })).status,
    ).toBe(403);
    const reused = first.uploadUrl.replace(first.assetId, second.assetId);
    expect((await fetch(reused, { method: 'PUT', headers: { 'content-type': 'text/plain' }, body: 'x' })).status).toBe(
      403,
    );
    const asDownload = await fetch(first.uploadUrl);
    expect(asDownload.status).toBe(403);
  });

  it('lists assets and forgets a deleted one, which then cannot be referenced', async () => {
    const asset = await createAsset('application/json', 'to delete');
    await fetch(asset.uploadUrl, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{}' });
    const assets = `${rig.gateway.url}/v2/nvcf/assets`;
    const listed = (await (await fetch(assets)).json()) as { assets: { assetId: string }[] };
    expect(listed.assets.map((a) => a.assetId)).toContain(asset.assetId);
    expect((await fetch(`${assets}/${asset.assetId}`, { method: 'DELETE' })).status).toBe(204);
    expect((await fetch(`${assets}/${asset.assetId}`, { method: 'DELETE' })).status).toBe(404);
    const res = await fetch(`${rig.gateway.url}/v2/nvcf/pexec/functions/${rig.worker.env.FUNCTION_ID}`, {
      method: 'POST',
      headers: { 'NVCF-INPUT-ASSET-REFERENCES': asset.assetId },
      body: '{}',
    });
    expect(res.status).toBe(404);
  });

  it('answers 400 to an asset request without a media type', async () => {
    const res = await fetch(`${rig.gateway.url}/v2/nvcf/assets`, {
      method: 'POST',
      body: JSON.stringify({ description: 'no type' }),
    });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });

  it('answers 302 to a result with output files, and Location serves the zip holding them', async () => {
    rig.container.route = async (req, res) => {
      await writeFile(join(String(req.headers['nvcf-large-output-dir']), 'image1.txt'), 'the picture');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    };
    const res = await pexecKeeping302();
    expect(res.status).toBe(302);
    expect(res.headers.get('nvcf-status')).toBe('fulfilled');
    const requestId = res.headers.get('nvcf-reqid')!;
    const location = res.headers.get('location')!;
    expect(location).toContain(`/v2/nvcf/storage/results/${requestId}?`);
    const { out, files } = await unpacked(location);
    expect(files).toEqual([`${requestId}.response`, 'image1.txt'].sort());
    expect(await readFile(join(out, 'image1.txt'), 'utf8')).toBe('the picture');
    expect(await readFile(join(out, `${requestId}.response`), 'utf8')).toBe('{"ok":true}');
  });

  it("takes a worker's second upload of a result without an error in its log when the first was broken off", async () => {
    rig.container.route = async (req, res) => {
      const dir = String(req.headers['nvcf-large-output-dir']);
      // A scratch file under a final name, shipped at once and gone by the end: the worker drops
      // the upload it had started and sends the zip again without it.
      await writeFile(join(dir, 'scratch.tmp'), 'half-done');
      await sleep(500);
      await rm(join(dir, 'scratch.tmp'));
      await writeFile(join(dir, 'image1.txt'), 'the picture');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    };
    const res = await pexecKeeping302();
    expect(res.status).toBe(302);
    const requestId = res.headers.get('nvcf-reqid')!;
    expect((await unpacked(res.headers.get('location')!)).files).toEqual(
      [`${requestId}.response`, 'image1.txt'].sort(),
    );
    const lines = rig.gateway.logs.lines.filter((l) => JSON.stringify(l).includes(requestId));
    expect(lines.map((l) => l.msg)).toContain('upload broken off by its sender; nothing stored');
    expect(lines.filter((l) => l.level === 'error' || l.level === 'warn')).toEqual([]);
    // The worker is the one to say why, naming the file.
    const why = rig.worker.logs.lines.find((l) => JSON.stringify(l).includes(requestId) && l.level === 'warn');
    expect(why).toMatchObject({ files: ['scratch.tmp'] });
    expect(String(why!.msg)).toContain('.partial');
  });
});
