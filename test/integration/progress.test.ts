import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { rename, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { outputDirOf, type Route } from '../support/container.js';
import { largeResultInvocation } from '../support/env.js';
import { useRig } from '../support/rig.js';

/**
 * The progress file a container writes in its output directory: relayed to the caller in order,
 * latest first to a late reader, and never followed or trusted past what it may say.
 */
describe('progress reported through the progress file', () => {
  const rig = useRig({ storage: true, worker: { env: { MAX_REQUEST_CONCURRENCY: '4' } } });
  const withLargeResult = () => largeResultInvocation(rig.worker.env, rig.storage);

  it('reports progress written in place 10, 50, 90 in order, skipping an oversize and a malformed file, and nothing after the final', async () => {
    rig.container.route = async (req, res) => {
      const file = join(outputDirOf(req), 'progress');
      const id = String(req.headers['nvcf-reqid']);
      for (const progress of [10, 50, 90]) {
        await writeFile(file, JSON.stringify({ id, progress, partialResponse: { step: progress } }));
        await sleep(150);
        if (progress === 50) {
          await writeFile(file, JSON.stringify({ id, progress: 60, partialResponse: { blob: 'x'.repeat(300_000) } }));
          await sleep(150);
          await writeFile(file, '{"id": "half');
          await sleep(250);
        }
      }
      res.writeHead(200).end('{"done":true}');
    };
    const invocation = withLargeResult();
    const replyTo = await rig.client.invoke(invocation);
    const result = await rig.client.result(replyTo);
    expect(result.status).toBe(200);
    expect(result.progress.map((p) => [p.percentComplete, JSON.parse(p.body.toString())])).toEqual([
      [10, { step: 10 }],
      [50, { step: 50 }],
      [90, { step: 90 }],
    ]);
    const warnings = rig.worker.logs.lines
      .filter((l) => l.requestId === invocation.requestId && l.msg === 'progress file ignored')
      .map((l) => String(l.reason));
    expect(warnings.some((r) => /over the \d+-byte limit/.test(r))).toBe(true);
    expect(warnings.some((r) => /not valid JSON/.test(r))).toBe(true);
    await sleep(300);
    const kinds: string[] = [];
    for await (const frame of rig.client.responses(replyTo, AbortSignal.timeout(500))) kinds.push(frame.meta.kind);
    expect(kinds.at(-1)).toBe('final');
    expect(kinds.filter((k) => k === 'final')).toHaveLength(1);
    // A late reader asks for the latest of each subject: one progress (the last), not the history.
    const latest = [];
    for await (const frame of rig.client.responses(replyTo, AbortSignal.timeout(500), undefined, true))
      latest.push(frame.meta);
    expect(latest.map((m) => (m.kind === 'progress' ? `progress ${m.percentComplete}` : m.kind))).toEqual([
      'progress 90',
      'final',
    ]);
  });

  it('never follows a progress file that is a symlink, and never blocks on one that is a FIFO', async () => {
    const elsewhere = join(rig.storage.dir, 'progress-elsewhere.json');
    await writeFile(elsewhere, JSON.stringify({ progress: 77, partialResponse: { secret: true } }));
    const cases: Route[] = [
      async (req) => void (await symlink(elsewhere, join(outputDirOf(req), 'progress'))),
      async (req) => void execFileSync('mkfifo', [join(outputDirOf(req), 'progress')]),
    ];
    for (const makeProgress of cases) {
      rig.container.route = async (req, res) => {
        await makeProgress(req, res);
        await sleep(300);
        res.writeHead(200).end('{}');
      };
      const invocation = withLargeResult();
      const result = await rig.client.result(await rig.client.invoke(invocation));
      expect(result.status).toBe(200);
      expect(result.progress).toEqual([]);
      const reasons = rig.worker.logs.lines
        .filter((l) => l.requestId === invocation.requestId && l.msg === 'progress file ignored')
        .map((l) => String(l.reason));
      expect(reasons.every((r) => /^not read: (symbolic link|not a regular file)$/.test(r))).toBe(true);
    }
  });

  it('ignores a progress file whose id names another request', async () => {
    rig.container.route = async (req, res) => {
      await writeFile(join(outputDirOf(req), 'progress'), JSON.stringify({ id: randomUUID(), progress: 40 }));
      await sleep(200);
      res.writeHead(200).end('{}');
    };
    const result = await rig.client.result(await rig.client.invoke(withLargeResult()));
    expect(result.progress).toEqual([]);
  });

  it('reports each step of a progress file written to a temporary name and renamed, and answers inline, not a 302: a file gone by the response is no output', async () => {
    rig.container.route = async (req, res) => {
      const dir = outputDirOf(req);
      const id = String(req.headers['nvcf-reqid']);
      for (const progress of [25, 50, 75]) {
        // Atomically, so the worker never reads half a report, but through a name it may ship.
        await writeFile(join(dir, 'progress.tmp'), JSON.stringify({ id, progress, partialResponse: { progress } }));
        await rename(join(dir, 'progress.tmp'), join(dir, 'progress'));
        // Time for the watcher to see the temporary name come and go.
        await sleep(150);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"done":true}');
    };
    const result = await rig.client.result(await rig.client.invoke(withLargeResult()));
    expect(result.status).toBe(200);
    expect(result.body.toString()).toBe('{"done":true}');
    expect(result.progress.map((p) => p.percentComplete)).toEqual([25, 50, 75]);
  });
});
