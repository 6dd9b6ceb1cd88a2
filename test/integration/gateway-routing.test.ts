import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gate } from '../support/container.js';
import { loopbackAgent } from '../support/resolve.js';
import { useRig } from '../support/rig.js';
import { readZip } from '../support/zip.js';

describe('calls routed by host name or function-id header, as NVCF routes them', () => {
  const KEY = 'nvapi-routing';
  const auth = { authorization: `Bearer ${KEY}` };
  const rig = useRig({
    container: (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ method: req.method, url: req.url, body: req.body.toString('utf8') }));
    },
    worker: { env: { MAX_REQUEST_CONCURRENCY: '4', LOG_LEVEL: 'warn' } },
    gateway: {
      env: { GATEWAY_API_KEY: KEY, GATEWAY_INVOCATION_REGION: 'eu-local-1' },
      awaitStatus: 'ACTIVE',
      apiKey: KEY,
    },
  });
  const agent = loopbackAgent();
  afterAll(() => agent.close());
  let fid: string;
  let fvid: string;
  beforeAll(() => {
    fid = rig.worker.env.FUNCTION_ID!;
    fvid = rig.worker.env.FUNCTION_VERSION_ID!;
  });

  /** A call to `http://<host>:<port><path>` that reaches the gateway whatever the host, as `curl --resolve` does. */
  const call = (
    host: string,
    path: string,
    init: { method?: string; headers?: Record<string, string>; body?: string } = {},
  ) =>
    request(`http://${host}:${rig.gateway.gateway.port}${path}`, {
      dispatcher: agent,
      method: (init.method ?? 'GET') as 'GET',
      headers: { ...auth, ...init.headers },
      body: init.body ?? null,
    });

  it('sends a host-routed GET to the container at its own path and query, not the inference URL', async () => {
    const res = await call(`${fid}.localhost`, '/query?name=John&x=%2F');
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ method: 'GET', url: '/query?name=John&x=%2F', body: '' });
    expect(res.headers['nvcf-status']).toBe('fulfilled');
    expect(res.headers['nvcf-reqid']).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.headers['nvcf-function-id']).toBe(fid);
    expect(res.headers['nvcf-function-version-id']).toBe(fvid);
  });

  it('takes <versionId>.<functionId>. in the host as that version, and answers 404 for a version it does not know', async () => {
    const res = await call(`${fvid}.${fid}.invocation.localhost`, '/echo', { method: 'POST', body: 'hi' });
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ method: 'POST', url: '/echo', body: 'hi' });
    const unknown = await call(`${fid}.${fid}.localhost`, '/echo', { method: 'POST', body: 'hi' });
    expect(unknown.statusCode).toBe(404);
    expect(unknown.headers['content-type']).toBe('application/problem+json');
    // The gateway's own problems have no custom type, as the invocation service's have none.
    expect(await unknown.body.json()).not.toHaveProperty('type');
  });

  it('routes any method and path by the function-id header, and the optional function-version-id', async () => {
    const put = await call('127.0.0.1', '/items/7?sort=asc', {
      method: 'PUT',
      headers: { 'function-id': fid, 'content-type': 'text/plain' },
      body: 'seven',
    });
    expect(await put.body.json()).toEqual({ method: 'PUT', url: '/items/7?sort=asc', body: 'seven' });
    const del = await call('127.0.0.1', '/items/7', {
      method: 'DELETE',
      headers: { 'function-id': fid, 'function-version-id': fvid },
    });
    expect(del.statusCode).toBe(200);
    expect(await del.body.json()).toMatchObject({ method: 'DELETE', url: '/items/7' });
    expect(del.headers['nvcf-function-version-id']).toBe(fvid);
  });

  it("keeps the gateway's own API under /v2/nvcf/ even when the call names a function", async () => {
    const res = await call('127.0.0.1', '/v2/nvcf/functions', { headers: { 'function-id': fid } });
    expect(res.statusCode).toBe(200);
    expect(((await res.body.json()) as { functions: unknown[] }).functions.length).toBeGreaterThan(0);
    const unrouted = await call('127.0.0.1', '/echo', { method: 'POST', body: 'x' });
    expect(unrouted.statusCode).toBe(404);
    await unrouted.body.dump();
  });

  it('asks a routed call for the API key like any other call', async () => {
    const res = await call(`${fid}.localhost`, '/echo', { method: 'POST', body: 'x', headers: { authorization: '' } });
    expect(res.statusCode).toBe(401);
    await res.body.dump();
  });

  it('sets NVCF-INVOCATION-REGION for the container and drops the value a client sent', async () => {
    const before = rig.container.seen.length;
    await (await call(`${fid}.localhost`, '/region', { headers: { 'NVCF-INVOCATION-REGION': 'spoofed' } })).body.dump();
    const seen = rig.container.seen.slice(before).find((r) => r.url === '/region')!;
    expect(seen.rawHeaders.filter(([n]) => n.toLowerCase() === 'nvcf-invocation-region')).toEqual([
      ['NVCF-INVOCATION-REGION', 'eu-local-1'],
    ]);
  });

  it('answers a slow routed call 202 when NVCF-POLL-SECONDS is 0 (taken as 1), then the result to a status poll', async () => {
    const released = gate();
    rig.container.route = async (req, res) => {
      await released.opened;
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`finally ${req.url}`);
    };
    const first = await call(`${fid}.localhost`, '/slow?step=1', { headers: { 'NVCF-POLL-SECONDS': '0' } });
    expect(first.statusCode).toBe(202);
    expect(first.headers['nvcf-status']).toBe('in-progress');
    const requestId = first.headers['nvcf-reqid'] as string;
    await first.body.dump();
    released.open();
    const done = await call('127.0.0.1', `/v2/nvcf/pexec/status/${requestId}`, {
      headers: { 'NVCF-POLL-SECONDS': '30' },
    });
    expect(done.statusCode).toBe(200);
    expect(await done.body.text()).toBe('finally /slow?step=1');
    expect(done.headers['nvcf-function-id']).toBe(fid);
  });

  it("answers a routed call's output files with a 302 to their zip, and a container error with its problem, as pexec does", async () => {
    rig.container.route = async (req, res) => {
      if (req.url === '/render?size=2') {
        await writeFile(join(String(req.headers['nvcf-large-output-dir']), 'frame.txt'), 'the frame');
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"frames":1}');
        return;
      }
      res.writeHead(422, { 'content-type': 'application/json' }).end('{"error":"size must be even"}');
    };
    const moved = await call(`${fid}.localhost`, '/render?size=2', { method: 'POST', body: '{}' });
    expect(moved.statusCode).toBe(302);
    expect(moved.headers['nvcf-status']).toBe('fulfilled');
    const requestId = moved.headers['nvcf-reqid'] as string;
    await moved.body.dump();
    const zip = await fetch(moved.headers.location as string);
    expect(zip.status).toBe(200);
    const file = join(await mkdtemp(join(tmpdir(), 'nvcf-routed-zip-')), 'result.zip');
    await writeFile(file, Buffer.from(await zip.arrayBuffer()));
    const entries = await readZip(file);
    expect(entries.get('frame.txt')?.toString()).toBe('the frame');
    expect(entries.get(`${requestId}.response`)?.toString()).toBe('{"frames":1}');

    const refused = await call('127.0.0.1', '/render?size=3', { method: 'POST', headers: { 'function-id': fid } });
    expect(refused.statusCode).toBe(422);
    expect(refused.headers['content-type']).toBe('application/problem+json');
    expect(refused.headers['nvcf-status']).toBe('errored');
    expect(await refused.body.json()).toMatchObject({
      type: 'urn:inference-service:problem-details:unprocessable-entity',
      detail: 'size must be even',
    });
  });

  it("relays a container's own 202 in pass-through mode as the answer, which ends the request (a decision, docs/harness.md)", async () => {
    rig.container.route = (_req, res) => {
      res.writeHead(202, { 'content-type': 'application/json' }).end('{"job":"7","poll":"/jobs/7"}');
    };
    const res = await call(`${fid}.localhost`, '/jobs', {
      method: 'POST',
      headers: { 'nvcf-feature-disable-worker-compatibility': 'true' },
      body: '{}',
    });
    expect(res.statusCode).toBe(202);
    expect(res.headers['nvcf-status']).toBe('in-progress');
    expect(await res.body.json()).toEqual({ job: '7', poll: '/jobs/7' });
    const later = await call('127.0.0.1', `/v2/nvcf/pexec/status/${String(res.headers['nvcf-reqid'])}`);
    expect(later.statusCode).toBe(404);
    await later.body.dump();
  });

  it('carries a routed body larger than one NATS message to the container whole', async () => {
    rig.container.route = (req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' }).end(`${req.url} ${req.body.length} ${req.body.at(-1)}`);
    };
    const body = Buffer.alloc(3 * 1024 * 1024, 7);
    body[body.length - 1] = 9;
    const res = await request(`http://127.0.0.1:${rig.gateway.gateway.port}/upload?part=1`, {
      method: 'PUT',
      headers: { ...auth, 'function-id': fid, 'content-type': 'application/octet-stream' },
      body,
    });
    expect(res.statusCode).toBe(200);
    expect(await res.body.text()).toBe(`/upload?part=1 ${body.length} 9`);
  });

  describe('browsers', () => {
    const preflight = (host: string, path: string, origin = 'https://app.example') =>
      request(`http://${host}:${rig.gateway.gateway.port}${path}`, {
        dispatcher: agent,
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers':
            'authorization, content-type, function-id, nvcf-poll-seconds, nvcf-custom-thing',
        },
      });

    it('answers a preflight on an API path and on a routed call without the API key, and never forwards it', async () => {
      const before = rig.container.seen.length;
      for (const [host, path] of [
        ['127.0.0.1', `/v2/nvcf/pexec/functions/${fid}`],
        ['127.0.0.1', '/v2/nvcf/pexec/status/00000000-0000-4000-8000-000000000000'],
        [`${fid}.localhost`, '/v1/chat/completions'],
      ] as const) {
        const res = await preflight(host, path);
        expect(res.statusCode).toBe(204);
        expect(res.headers['access-control-allow-origin']).toBe('*');
        expect(res.headers['access-control-allow-methods']).toContain('POST');
        const allowed = String(res.headers['access-control-allow-headers']).split(', ');
        for (const name of [
          'authorization',
          'content-type',
          'function-id',
          'function-version-id',
          'nvcf-poll-seconds',
          'nvcf-custom-thing',
        ])
          expect(allowed).toContain(name);
        await res.body.dump();
      }
      expect(rig.container.seen.length).toBe(before);
    });

    it('lets a page read NVCF-REQID, NVCF-STATUS and the other polling headers of an answer', async () => {
      const res = await fetch(`${rig.gateway.url}/v2/nvcf/pexec/functions/${fid}`, {
        method: 'POST',
        headers: { ...auth, origin: 'https://app.example', 'content-type': 'application/json' },
        body: '{}',
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      const exposed = res.headers.get('access-control-expose-headers')!.split(', ');
      for (const name of ['NVCF-REQID', 'NVCF-STATUS', 'NVCF-PERCENT-COMPLETE', 'Location'])
        expect(exposed).toContain(name);
      expect(res.headers.get('nvcf-reqid')).toMatch(/^[0-9a-f-]{36}$/);
    });

    it('keeps one Access-Control-Allow-Origin when the container sends its own', async () => {
      rig.container.route = (_req, res) => {
        res.writeHead(200, { 'access-control-allow-origin': '*', 'content-type': 'text/plain' }).end('cors too');
      };
      const res = await call(`${fid}.localhost`, '/with-cors', { headers: { origin: 'https://app.example' } });
      expect(res.statusCode).toBe(200);
      expect(res.headers['access-control-allow-origin']).toBe('*');
      expect(await res.body.text()).toBe('cors too');
    });

    it('allows only the configured origins when GATEWAY_CORS_ORIGINS lists them', async () => {
      const strict = await rig.startGateway({
        GATEWAY_ID: 'gw-cors',
        GATEWAY_CORS_ORIGINS: 'https://app.example, http://localhost:3000',
      });
      const ok = await fetch(`${strict.url}/v2/nvcf/functions`, {
        method: 'OPTIONS',
        headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'GET' },
      });
      expect(ok.status).toBe(204);
      expect(ok.headers.get('access-control-allow-origin')).toBe('http://localhost:3000');
      expect(ok.headers.get('vary')).toBe('Origin');
      const refused = await fetch(`${strict.url}/v2/nvcf/functions`, {
        method: 'OPTIONS',
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' },
      });
      expect(refused.status).toBe(403);
      expect(refused.headers.get('access-control-allow-origin')).toBeNull();
      const plain = await fetch(`${strict.url}/v2/nvcf/functions`, { headers: { origin: 'https://evil.example' } });
      expect(plain.headers.get('access-control-allow-origin')).toBeNull();
      await plain.body?.cancel();
    });
  });
});
