import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { gate } from '../support/container.js';
import { streams } from '../../src/shared/protocol.js';
import { useRig } from '../support/rig.js';

describe('the gateway pexec API in front of a real worker', () => {
  const rig = useRig({
    worker: { env: { MAX_REQUEST_CONCURRENCY: '4', LOG_LEVEL: 'warn' } },
    gateway: { awaitStatus: 'ACTIVE' },
  });
  const pexec = (init: RequestInit & { headers?: Record<string, string> } = {}, version = false) => {
    const { FUNCTION_ID: fid, FUNCTION_VERSION_ID: fvid } = rig.worker.env;
    return fetch(`${rig.gateway.url}/v2/nvcf/pexec/functions/${fid}${version ? `/versions/${fvid}` : ''}`, {
      method: 'POST',
      ...init,
    });
  };
  const status = (requestId: string, headers: Record<string, string> = {}) =>
    fetch(`${rig.gateway.url}/v2/nvcf/pexec/status/${requestId}`, { headers });

  it('answers 200 inline with the container body, then 404 to a status poll for the same request', async () => {
    const res = await pexec({
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'hi' }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('nvcf-status')).toBe('fulfilled');
    const requestId = res.headers.get('nvcf-reqid')!;
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await res.json()).toEqual({ prompt: 'hi' });
    expect(rig.container.seen.at(-1)!.url).toBe('/infer');
    expect((await status(requestId)).status).toBe(404);
  });

  it('answers 202 when the poll window ends first, then delivers the result to one status poll and 404 after', async () => {
    const released = gate();
    rig.container.route = async (req, res) => {
      await released.opened;
      res.writeHead(200, { 'content-type': 'text/plain' }).end('done at last');
    };
    const first = await pexec({ headers: { 'NVCF-POLL-SECONDS': '1' }, body: 'slow' });
    expect(first.status).toBe(202);
    expect(first.headers.get('nvcf-status')).toBe('in-progress');
    const requestId = first.headers.get('nvcf-reqid')!;
    expect(await first.text()).toBe('');
    const place = (await (await fetch(`${rig.gateway.url}/v2/nvcf/queues/${requestId}/position`)).json()) as {
      positionInQueue: number;
    };
    expect(place.positionInQueue).toBe(0);
    const stillRunning = await status(requestId, { 'NVCF-POLL-SECONDS': '1' });
    expect(stillRunning.status).toBe(202);
    expect(stillRunning.headers.get('nvcf-reqid')).toBe(requestId);
    released.open();
    const done = await status(requestId, { 'NVCF-POLL-SECONDS': '30' });
    expect(done.status).toBe(200);
    expect(done.headers.get('nvcf-status')).toBe('fulfilled');
    expect(await done.text()).toBe('done at last');
    const again = await status(requestId);
    expect(again.status).toBe(404);
    expect(again.headers.get('content-type')).toBe('application/problem+json');
  });

  it('keeps quiet with more calls waiting at once than Node counts as a listener leak', async () => {
    const released = gate();
    rig.container.route = async (_req, res) => {
      await released.opened;
      res.writeHead(200).end('ok');
    };
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(`${warning.name}: ${warning.message}`);
    process.on('warning', onWarning);
    try {
      const calls = Array.from({ length: 12 }, () => pexec({ body: 'x' }));
      await expect.poll(() => rig.container.concurrent).toBe(4);
      released.open();
      expect((await Promise.all(calls)).map((r) => r.status)).toEqual(Array(12).fill(200));
    } finally {
      process.off('warning', onWarning);
    }
    expect(warnings.filter((w) => w.startsWith('MaxListenersExceeded'))).toEqual([]);
  });

  it("passes the container's error through as problem+json with its status", async () => {
    rig.container.route = (_req, res) =>
      void res.writeHead(422, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'prompt too long' }));
    const res = await pexec({ body: '{}' }, true);
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.headers.get('nvcf-status')).toBe('errored');
    expect(await res.json()).toMatchObject({ status: 422, detail: 'prompt too long' });
  });

  for (const bad of ['3601', 'soon', '1.5']) {
    it(`refuses NVCF-POLL-SECONDS "${bad}" with a 400 problem and queues nothing`, async () => {
      const before = rig.container.seen.length;
      const res = await pexec({ headers: { 'NVCF-POLL-SECONDS': bad }, body: 'x' });
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      expect(((await res.json()) as { detail: string }).detail).toContain('NVCF-POLL-SECONDS');
      expect(rig.container.seen.length).toBe(before);
    });
  }

  it('answers 404 for an asset reference nobody uploaded, before the container is called', async () => {
    const before = rig.container.seen.length;
    const res = await pexec({ headers: { 'NVCF-INPUT-ASSET-REFERENCES': randomUUID() }, body: 'x' });
    expect(res.status).toBe(404);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/asset .* not found/);
    expect(rig.container.seen.length).toBe(before);
  });

  it('answers 400 for an asset reference that is not an asset id', async () => {
    const res = await pexec({ headers: { 'NVCF-INPUT-ASSET-REFERENCES': '../../etc/passwd' }, body: 'x' });
    expect(res.status).toBe(400);
  });

  it('answers 404 for a function no worker registered, and for a hostile function id', async () => {
    const functions = `${rig.gateway.url}/v2/nvcf/pexec/functions`;
    expect((await fetch(`${functions}/${randomUUID()}`, { method: 'POST' })).status).toBe(404);
    expect((await fetch(`${functions}/%2e%2e%2f%00`, { method: 'POST' })).status).toBe(404);
    expect((await status('not-a-request')).status).toBe(404);
  });

  it('carries a 5 MiB binary body to the container and back byte for byte', async () => {
    const body = randomBytes(5 * 1024 * 1024);
    const res = await pexec({ headers: { 'content-type': 'application/octet-stream' }, body });
    expect(res.status).toBe(200);
    const back = Buffer.from(await res.arrayBuffer());
    expect(rig.container.seen.at(-1)!.body.equals(body)).toBe(true);
    expect(back.equals(body)).toBe(true);
  });

  it('streams server-sent events to the client one by one, as the container writes them', async () => {
    let sendSecond!: () => void;
    const secondAllowed = new Promise<void>((r) => (sendSecond = r));
    rig.container.route = async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
      await secondAllowed;
      res.end('data: two\n\n');
    };
    const res = await pexec({ headers: { accept: 'text/event-stream' }, body: '{}' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let seen = '';
    while (!seen.includes('data: one')) seen += decoder.decode((await reader.read()).value);
    // The first event arrived while the container was still holding the second one back.
    expect(seen).not.toContain('two');
    sendSecond();
    for (let r = await reader.read(); !r.done; r = await reader.read()) seen += decoder.decode(r.value);
    expect(seen).toBe('data: one\n\ndata: two\n\n');
  });

  it('cancels the container call when the client goes away', async () => {
    let closed!: () => void;
    const containerSawClose = new Promise<void>((r) => (closed = r));
    let started!: () => void;
    const containerStarted = new Promise<void>((r) => (started = r));
    rig.container.route = (_req, res) => {
      res.on('close', closed);
      started();
    };
    const client = new AbortController();
    const call = pexec({ body: 'x', signal: client.signal }).catch((err: Error) => err);
    await containerStarted;
    client.abort();
    expect(await call).toBeInstanceOf(Error);
    await containerSawClose;
    // The cancel reaches the worker before the gateway has purged and logged: wait for the log line.
    await expect.poll(() => rig.gateway.logs.lines.some((l) => l.msg === 'request cancelled')).toBe(true);
  });

  it('asks for the API key when one is set: 401 without it, 200 with it', async () => {
    const guarded = await rig.startGateway({ GATEWAY_ID: 'gw-keyed', GATEWAY_API_KEY: 'nvapi-secret' });
    const url = `${guarded.url}/v2/nvcf/pexec/functions/${rig.worker.env.FUNCTION_ID}`;
    const denied = await fetch(url, { method: 'POST', body: 'x' });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('content-type')).toBe('application/problem+json');
    expect((await fetch(url, { method: 'POST', body: 'x', headers: { authorization: 'Bearer wrong' } })).status).toBe(
      401,
    );
    const allowed = await fetch(url, {
      method: 'POST',
      body: 'x',
      headers: { authorization: 'Bearer nvapi-secret' },
    });
    expect(allowed.status).toBe(200);
    expect(rig.container.seen.at(-1)!.headers.authorization).toBeUndefined();
  });

  it('still answers once NVCF_RS was deleted and made again under the running gateway, whose readers start past what they saw in the old one', async () => {
    expect((await pexec({ body: '"before"' })).status).toBe(200);
    const jsm = await rig.nc.jetstreamManager();
    const { config } = await jsm.streams.info(streams.results);
    await jsm.streams.delete(streams.results);
    await jsm.streams.add(config);
    const answer = await pexec({ body: '"after"' });
    expect(answer.status).toBe(200);
    expect(await answer.text()).toBe('"after"');
  });
});
