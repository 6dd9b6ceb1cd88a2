import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { invocationFor } from '../support/env.js';
import { useRig } from '../support/rig.js';

describe('a request published on the work queue', () => {
  // The storage doubles as the server a caller parks a large request body on.
  const rig = useRig({ storage: true, worker: { env: { MAX_REQUEST_CONCURRENCY: '4' } } });

  for (const [label, size] of [
    ['0 B', 0],
    ['1 KiB', 1024],
    ['900 KiB', 900 * 1024],
  ] as const) {
    it(`comes back byte-exact with a ${label} binary body sent inline`, async () => {
      const body = randomBytes(size);
      const replyTo = await rig.client.invoke(invocationFor(rig.worker.env), body);
      const result = await rig.client.result(replyTo);
      expect(result.status).toBe(200);
      expect(result.body.equals(body)).toBe(true);
      expect(rig.container.seen.at(-1)!.body.equals(body)).toBe(true);
    });
  }

  it('comes back byte-exact with a 3 MiB binary body fetched by URL and returned in chunks', async () => {
    const body = randomBytes(3 * 1024 * 1024);
    await writeFile(rig.storage.path('body-3mib'), body);
    const url = rig.storage.url('body-3mib');
    const replyTo = await rig.client.invoke(invocationFor(rig.worker.env, { bodyUrl: url }));
    const result = await rig.client.result(replyTo);
    expect(result.status).toBe(200);
    expect(rig.container.seen.at(-1)!.body.equals(body)).toBe(true);
    expect(result.body.length).toBe(body.length);
    expect(result.body.equals(body)).toBe(true);
  });

  it('carries the container status and headers back with the body', async () => {
    rig.container.route = (req, res) => {
      res.writeHead(201, { 'content-type': 'application/json', 'x-model-version': '7' });
      res.end(JSON.stringify({ created: true }));
    };
    const result = await rig.client.result(await rig.client.invoke(invocationFor(rig.worker.env)));
    expect(result.status).toBe(201);
    expect(result.headers).toContainEqual(['x-model-version', '7']);
    expect(JSON.parse(result.body.toString())).toEqual({ created: true });
  });

  it('answers a body URL that cannot be fetched with a 500 problem and never calls the container', async () => {
    const before = rig.container.seen.length;
    const url = rig.storage.url('body-missing');
    const result = await rig.client.result(await rig.client.invoke(invocationFor(rig.worker.env, { bodyUrl: url })));
    expect(result.status).toBe(500);
    const problem = JSON.parse(result.body.toString());
    expect(problem.type).toBe('urn:nvcf-worker-service:problem-details:internal-server-error');
    expect(problem.detail).toMatch(/request body answered 404/);
    expect(rig.container.seen.length).toBe(before);
  });

  it('gives the container an output directory that exists during the call and is gone after it', async () => {
    let existedDuringCall = false;
    rig.container.route = (req, res) => {
      existedDuringCall = existsSync(String(req.headers['nvcf-large-output-dir']));
      res.writeHead(200).end('{}');
    };
    const invocation = invocationFor(rig.worker.env);
    const result = await rig.client.result(await rig.client.invoke(invocation));
    expect(result.status).toBe(200);
    expect(existedDuringCall).toBe(true);
    expect(existsSync(`${rig.worker.env.BASE_RESPONSE_DIR}/${invocation.requestId}`)).toBe(false);
  });
});
