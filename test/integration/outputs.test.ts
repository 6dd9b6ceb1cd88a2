import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdir, open, rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { problemOf } from '../support/client.js';
import { outputDirOf, type Route } from '../support/container.js';
import { invocationFor, largeResultInvocation } from '../support/env.js';
import { useRig } from '../support/rig.js';
import { readZip } from '../support/zip.js';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe("a request's output files", () => {
  const rig = useRig({ storage: true, worker: { env: { MAX_REQUEST_CONCURRENCY: '4' } } });
  const withLargeResult = (overrides: Parameters<typeof invocationFor>[1] = {}) =>
    largeResultInvocation(rig.worker.env, rig.storage, overrides);

  it('announces a file renamed from .partial before the container returns, then ships it in a zip behind a 302', async () => {
    let returnedAt = 0;
    const image = randomBytes(4096);
    rig.container.route = async (req, res) => {
      await writeFile(join(outputDirOf(req), 'a.partial'), image);
      await rename(join(outputDirOf(req), 'a.partial'), join(outputDirOf(req), 'a.png'));
      await sleep(600);
      returnedAt = Date.now();
      res.writeHead(200).end('{"images":1}');
    };
    const invocation = withLargeResult();
    const started = Date.now();
    const result = await rig.client.result(await rig.client.invoke(invocation));
    expect(result.status).toBe(302);
    expect(result.headers).toContainEqual(['Location', invocation.largeResult!.downloadUrl]);
    expect(result.body.length).toBe(0);
    expect(result.outputs).toEqual([{ name: 'a.png', size: 4096, sha256: sha256(image) }]);
    const announced = result.timeline.find((e) => e.type === 'output')!;
    expect(started + announced.at).toBeLessThan(returnedAt);
    const zip = await readZip(rig.storage.path(`${invocation.requestId}.zip`));
    expect([...zip.keys()].sort()).toEqual([`${invocation.requestId}.response`, 'a.png'].sort());
    expect(zip.get('a.png')!.equals(image)).toBe(true);
    expect(zip.get(`${invocation.requestId}.response`)!.toString()).toBe('{"images":1}');
  });

  it('ships the finished content of a file written under its final name while it was still growing', async () => {
    const parts = [randomBytes(64 * 1024), randomBytes(64 * 1024), randomBytes(64 * 1024)];
    rig.container.route = async (req, res) => {
      const file = join(outputDirOf(req), 'direct.bin');
      for (const part of parts) {
        await appendFile(file, part);
        await sleep(150);
      }
      res.writeHead(200).end('{}');
    };
    const invocation = withLargeResult();
    const result = await rig.client.result(await rig.client.invoke(invocation));
    expect(result.status).toBe(302);
    const whole = Buffer.concat(parts);
    expect(result.manifest!.files).toEqual([{ name: 'direct.bin', size: whole.length, sha256: sha256(whole) }]);
    const zip = await readZip(rig.storage.path(`${invocation.requestId}.zip`));
    expect(zip.get('direct.bin')!.equals(whole)).toBe(true);
  });

  it('waits for a file created empty under its final name to be written, instead of shipping it empty and uploading twice', async () => {
    const content = randomBytes(1024);
    rig.container.route = async (req, res) => {
      const file = join(outputDirOf(req), 'later.bin');
      const handle = await open(file, 'w');
      await sleep(300);
      await handle.write(content);
      await handle.close();
      await sleep(300);
      res.writeHead(200).end('{}');
    };
    const putsBefore = rig.storage.puts;
    const invocation = withLargeResult();
    const result = await rig.client.result(await rig.client.invoke(invocation));
    expect(result.status).toBe(302);
    expect(result.manifest!.files).toEqual([{ name: 'later.bin', size: 1024, sha256: sha256(content) }]);
    expect(rig.storage.puts - putsBefore).toBe(1);
  });

  it('turns a 12 MiB body into a 302 whose zip holds the body byte-exact', async () => {
    const body = randomBytes(12 * 1024 * 1024);
    rig.container.route = (_req, res) => void res.writeHead(200).end(body);
    const invocation = withLargeResult();
    const result = await rig.client.result(await rig.client.invoke(invocation), 60_000);
    expect(result.status).toBe(302);
    const zip = await readZip(rig.storage.path(`${invocation.requestId}.zip`));
    expect(zip.get(`${invocation.requestId}.response`)!.equals(body)).toBe(true);
  });

  it('keeps subdirectories, and leaves out symlinks, FIFOs and leftover .partial files, reporting each', async () => {
    rig.container.route = async (req, res) => {
      const dir = outputDirOf(req);
      await mkdir(join(dir, 'sub', 'deeper'), { recursive: true });
      await writeFile(join(dir, 'sub', 'deeper', 'b.txt'), 'kept');
      await symlink('/etc/passwd', join(dir, 'passwd'));
      await symlink(join(rig.worker.env.BASE_RESPONSE_DIR!), join(dir, 'others'));
      execFileSync('mkfifo', [join(dir, 'pipe')]);
      await writeFile(join(dir, 'x.partial'), 'unfinished');
      res.writeHead(200).end('{}');
    };
    const invocation = withLargeResult();
    const result = await rig.client.result(await rig.client.invoke(invocation));
    expect(result.status).toBe(302);
    const zip = await readZip(rig.storage.path(`${invocation.requestId}.zip`));
    expect([...zip.keys()].sort()).toEqual([`${invocation.requestId}.response`, 'sub/deeper/b.txt'].sort());
    const skipped = Object.fromEntries(result.manifest!.skipped.map((s) => [s.name, s.reason]));
    expect(skipped).toEqual({
      passwd: 'symbolic link',
      others: 'symbolic link',
      pipe: 'not a regular file',
      'x.partial': 'still .partial when the response arrived',
    });
    expect(result.manifest).toMatchObject({ fileCount: 1, skippedCount: 4 });
    const warned = rig.worker.logs.lines.filter(
      (l) => l.requestId === invocation.requestId && l.msg === 'output file not shipped',
    );
    expect(warned.map((l) => l.file).sort()).toEqual(['others', 'passwd', 'pipe', 'x.partial']);
  });

  it('retries an upload that storage answers with 503, and fails clearly when storage refuses it', async () => {
    rig.container.route = async (req, res) => {
      await writeFile(join(outputDirOf(req), 'out.txt'), 'data');
      res.writeHead(200).end('{}');
    };
    rig.storage.failPuts.push(503, 503);
    const retried = withLargeResult();
    const retriedResult = await rig.client.result(await rig.client.invoke(retried));
    expect(retriedResult.status).toBe(302);
    const zip = await readZip(rig.storage.path(`${retried.requestId}.zip`));
    expect([...zip.keys()].sort()).toEqual([`${retried.requestId}.response`, 'out.txt'].sort());
    expect(zip.get('out.txt')!.toString()).toBe('data');
    expect(rig.storage.puts).toBeGreaterThanOrEqual(3);

    rig.storage.failPuts.push(403);
    const refused = await rig.client.result(await rig.client.invoke(withLargeResult()));
    expect(refused.status).toBe(500);
    expect(String(problemOf(refused.body).detail)).toBe(
      'Internal error while uploading the large response: uploading the large result failed: storage answered 403',
    );
  });

  it('ships large and tiny files together, byte-exact with their SHA-256 in the manifest, from many files written at once', async () => {
    const big = randomBytes(5 * 1024 * 1024);
    const medium = Buffer.from('compressible text\n'.repeat(20_000));
    rig.container.route = async (req, res) => {
      const dir = outputDirOf(req);
      await writeFile(join(dir, 'big.bin.partial'), big);
      await rename(join(dir, 'big.bin.partial'), join(dir, 'big.bin'));
      await writeFile(join(dir, 'medium.txt'), medium);
      await mkdir(join(dir, 'many'));
      await Promise.all(Array.from({ length: 500 }, (_, i) => writeFile(join(dir, 'many', `${i}.txt`), String(i))));
      res.writeHead(200).end('{}');
    };
    const invocation = withLargeResult();
    const result = await rig.client.result(await rig.client.invoke(invocation));
    expect(result.status).toBe(302);
    const zip = await readZip(rig.storage.path(`${invocation.requestId}.zip`));
    expect(zip.size).toBe(503);
    expect(sha256(zip.get('big.bin')!)).toBe(sha256(big));
    expect(sha256(zip.get('medium.txt')!)).toBe(sha256(medium));
    expect(zip.get('many/499.txt')!.toString()).toBe('499');
    const listed = Object.fromEntries(result.manifest!.files.map((f) => [f.name, f]));
    expect(listed['big.bin']).toEqual({ name: 'big.bin', size: big.length, sha256: sha256(big) });
    expect(result.manifest).toMatchObject({ fileCount: 502, skippedCount: 0 });
  });

  it('does not answer 302 when storage says yes before it has read the whole archive', async () => {
    // A store that answers at once and drops the rest would hold a truncated zip.
    const hasty = await rig.serve((req, res) => void res.writeHead(200).end());
    const hastyUrl = hasty.url('/upload');
    rig.container.route = async (req, res) => {
      await writeFile(join(outputDirOf(req), 'big.bin'), randomBytes(20 * 1024 * 1024));
      res.writeHead(200).end('{}');
    };
    const result = await rig.client.result(
      await rig.client.invoke(withLargeResult({ largeResult: { uploadUrl: hastyUrl, downloadUrl: hastyUrl } })),
    );
    expect(result.status).toBe(500);
    expect(String(problemOf(result.body).detail)).toContain('before it had the whole archive');
  });

  it('removes both request directories after success, a container error and a cancel', async () => {
    const assetId = randomUUID();
    await writeFile(rig.storage.path(assetId), 'asset');
    const dirsOf = (id: string) => [
      join(rig.worker.env.BASE_ASSET_DIR!, id),
      join(rig.worker.env.BASE_RESPONSE_DIR!, id),
    ];
    const assets = [{ assetId, url: rig.storage.url(assetId), contentType: 'text/plain' }];
    const routes: Route[] = [
      async (req, res) => void res.writeHead(200).end('{}'),
      async (req, res) => void res.writeHead(500).end('{"error":"boom"}'),
      async () => undefined,
    ];
    for (const route of routes) {
      let seenDirs: string[] = [];
      rig.container.route = async (req, res) => {
        seenDirs = dirsOf(String(req.headers['nvcf-reqid']));
        await writeFile(join(outputDirOf(req), 'partial-work.partial'), 'x');
        await route(req, res);
      };
      const invocation = withLargeResult({ assets });
      const replyTo = await rig.client.invoke(invocation);
      if (route === routes[2]) {
        await expect.poll(() => seenDirs.length).toBe(2);
        rig.client.cancel(invocation.functionVersionId, invocation.requestId);
      }
      await rig.client.result(replyTo);
      expect(seenDirs.every((d) => d.includes(invocation.requestId))).toBe(true);
      await expect.poll(() => seenDirs.map((d) => existsSync(d))).toEqual([false, false]);
    }
  });
});
