import { spawn } from 'node:child_process';
import { existsSync, lstatSync, readdirSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { outputDirOf, type Route } from '../support/container.js';
import { invocationFor, largeResultInvocation } from '../support/env.js';
import { startRig, useRig } from '../support/rig.js';

/** A container that answers with what its output directory holds and how it is made. */
const describesItsDirectory: Route = (req, res) => {
  const dir = outputDirOf(req);
  const info = lstatSync(dir);
  res.writeHead(200, { 'content-type': 'application/json' }).end(
    JSON.stringify({
      entries: readdirSync(dir),
      directory: info.isDirectory(),
      mode: (info.mode & 0o7777).toString(8),
    }),
  );
};

describe('output directories given back for reuse', () => {
  const rig = useRig({ storage: true, worker: { env: { MAX_REQUEST_CONCURRENCY: '1' } } });
  const call = async () => {
    const result = await rig.client.result(await rig.client.invoke(invocationFor(rig.worker.env)), 30_000);
    return { status: result.status, body: JSON.parse(result.body.toString()) as Record<string, unknown> };
  };

  it('never hands a request a directory holding what a process of an earlier request wrote after its answer', async () => {
    // The first request's directory is older than 2.5 s when it is given back, so the check
    // of its mtime, not a listing, is what must notice the late file.
    rig.container.route = describesItsDirectory;
    await call();
    await sleep(2_700);
    rig.container.route = (req, res) => {
      // A process that keeps the directory as its working directory, and writes after the answer.
      spawn('sh', ['-c', 'sleep 0.3; echo late > late.txt'], { cwd: outputDirOf(req), stdio: 'ignore' });
      res.writeHead(200).end('{}');
    };
    expect((await call()).status).toBe(200);
    await sleep(800);
    rig.container.route = describesItsDirectory;
    expect(await call()).toEqual({ status: 200, body: { entries: [], directory: true, mode: '777' } });
  });

  it('ships a file written at once into a directory made from one that had been empty for a while', async () => {
    // Given back more than 2.5 s after it last changed, the directory is trusted by its
    // mtime alone when the next request ends; the file must still be found.
    rig.container.route = describesItsDirectory;
    await call();
    await sleep(2_700);
    await call();
    rig.container.route = async (req, res) => {
      await writeFile(join(outputDirOf(req), 'out.txt'), 'made');
      res.writeHead(200).end('{}');
    };
    const result = await rig.client.result(
      await rig.client.invoke(largeResultInvocation(rig.worker.env, rig.storage)),
      30_000,
    );
    expect(result.status).toBe(302);
    expect(result.manifest!.files.map((f) => f.name)).toEqual(['out.txt']);
  });

  it('gives the next request a directory of mode 0777 after a container changed its own', async () => {
    rig.container.route = async (req, res) => {
      await chmod(outputDirOf(req), 0o700);
      res.writeHead(200).end('{}');
    };
    expect((await call()).status).toBe(200);
    rig.container.route = describesItsDirectory;
    expect(await call()).toEqual({ status: 200, body: { entries: [], directory: true, mode: '777' } });
  });

  it('does not reuse a link a container put in place of its directory, nor touch what it points to', async () => {
    const elsewhere = await mkdtemp(join(tmpdir(), 'nvcf-elsewhere-'));
    const inside = join(elsewhere, 'empty');
    await mkdir(inside);
    rig.container.route = async (req, res) => {
      await rm(outputDirOf(req), { recursive: true });
      await symlink(inside, outputDirOf(req));
      res.writeHead(200).end('{}');
    };
    expect((await call()).status).toBe(200);
    rig.container.route = describesItsDirectory;
    expect(await call()).toEqual({ status: 200, body: { entries: [], directory: true, mode: '777' } });
    expect(existsSync(inside)).toBe(true);
    await writeFile(join(inside, 'still-mine'), 'x');
    expect(readdirSync(inside)).toEqual(['still-mine']);
  });
});

describe('a worker that stops', () => {
  it('leaves no directory of its own in the response directory', async () => {
    const rig = await startRig({ worker: { env: { MAX_REQUEST_CONCURRENCY: '4' } } });
    const base = rig.worker.env.BASE_RESPONSE_DIR!;
    try {
      await Promise.all(
        Array.from({ length: 8 }, async () =>
          rig.client.result(await rig.client.invoke(invocationFor(rig.worker.env)), 30_000),
        ),
      );
      // While it runs, the directories of finished requests wait under hidden names for the next.
      expect(readdirSync(base).every((name) => name.startsWith('.nvcf-spare-'))).toBe(true);
      expect(readdirSync(base).length).toBeGreaterThan(0);
    } finally {
      await rig.dispose();
    }
    expect(readdirSync(base)).toEqual([]);
  });
});
