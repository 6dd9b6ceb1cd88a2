import { randomUUID } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { invocationFor } from '../support/env.js';
import { useRig } from '../support/rig.js';

describe('a container that writes its progress to a temporary name and renames it to progress', () => {
  const rig = useRig({ storage: true, worker: { env: { LOG_LEVEL: 'warn' } } });

  it('reports each step and answers inline, not a 302: a file gone by the response is no output', async () => {
    rig.container.route = async (req, res) => {
      const dir = String(req.headers['nvcf-large-output-dir']);
      const id = String(req.headers['nvcf-reqid']);
      for (const progress of [25, 50, 75]) {
        // As examples/02-progress writes it, so the worker never reads half a report.
        await writeFile(join(dir, 'progress.tmp'), JSON.stringify({ id, progress, partialResponse: { progress } }));
        await rename(join(dir, 'progress.tmp'), join(dir, 'progress'));
        // Time for the watcher to see the temporary name come and go.
        await sleep(150);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"done":true}');
    };
    const requestId = randomUUID();
    const upload = rig.storage.url(`${requestId}.zip`);
    const invocation = invocationFor(rig.worker.env, {
      requestId,
      largeResult: { uploadUrl: upload, downloadUrl: upload },
    });
    const result = await rig.client.result(await rig.client.invoke(invocation));
    expect(result.status).toBe(200);
    expect(result.body.toString()).toBe('{"done":true}');
    expect(result.progress.map((p) => p.percentComplete)).toEqual([25, 50, 75]);
  });
});
