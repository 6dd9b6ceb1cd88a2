import { writeFile } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ServerResponse } from 'node:http';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { streams, subjects } from '../../src/shared/protocol.js';
import { gate } from '../support/container.js';
import { useRig } from '../support/rig.js';

/**
 * A client that asks for a result, reads only its first bytes and resets the connection. Python,
 * because Node cannot shrink a socket's receive buffer, and without that loopback buffers would
 * swallow the whole body before the client leaves.
 */
const DROPPING_CLIENT = `
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(('127.0.0.1', int(sys.argv[1])))
s.sendall(('GET /v2/nvcf/pexec/status/%s HTTP/1.1\\r\\nHost: gateway\\r\\n\\r\\n' % sys.argv[2]).encode())
print(s.recv(200).split(b'\\r\\n')[0].decode())
time.sleep(0.5)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, bytes([1, 0, 0, 0, 0, 0, 0, 0]))
s.close()
`;

const drained = (res: ServerResponse) => once(res, 'drain');

describe('how the gateway reads and hands out results', () => {
  const rig = useRig({
    worker: { env: { MAX_REQUEST_CONCURRENCY: '4', LOG_LEVEL: 'warn' } },
    gateway: { env: { LOG_LEVEL: 'warn' }, awaitStatus: 'ACTIVE' },
  });
  const pexec = (headers: Record<string, string> = {}, body = '{}') =>
    fetch(`${rig.gateway.url}/v2/nvcf/pexec/functions/${rig.worker.env.FUNCTION_ID}`, {
      method: 'POST',
      headers,
      body,
      redirect: 'manual',
    });
  const status = (requestId: string, pollSeconds = 1) =>
    fetch(`${rig.gateway.url}/v2/nvcf/pexec/status/${requestId}`, {
      headers: { 'nvcf-poll-seconds': String(pollSeconds) },
    });
  /** Polls until the answer is no longer 202. */
  const finalOf = async (requestId: string) => {
    let res: Response;
    do res = await status(requestId, 5);
    while (res.status === 202);
    return res;
  };

  it('leaves no consumer on the results stream, however many status polls it answers', async () => {
    const done = gate();
    rig.container.route = async (req, res) => {
      await done.opened;
      res.writeHead(200).end(req.body);
    };
    const first = await pexec({ 'nvcf-poll-seconds': '1' }, '"polled"');
    expect(first.status).toBe(202);
    const requestId = first.headers.get('nvcf-reqid')!;
    const jsm = await rig.nc.jetstreamManager();
    const consumers = async () => (await jsm.streams.info(streams.results)).state.consumer_count;
    const before = await consumers();
    const polls = await Promise.all(Array.from({ length: 40 }, () => status(requestId, 1)));
    expect(polls.map((r) => r.status)).toEqual(Array(40).fill(202));
    expect(await consumers()).toBe(before);
    done.open();
    const last = await finalOf(requestId);
    expect(last.status).toBe(200);
    expect(await last.text()).toBe('"polled"');
    expect(await consumers()).toBe(before);
  });

  it('takes a quick answer straight to its caller and then leaves none of its messages in the results stream', async () => {
    rig.container.route = (req, res) => void res.writeHead(200).end(req.body);
    const jsm = await rig.nc.jetstreamManager();
    const storedOf = async (requestId: string) =>
      (await jsm.streams.info(streams.results, { subjects_filter: `nvcf.rs.gw-test.${requestId}.>` })).state.subjects ??
      {};
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await pexec({}, `{"n":${i}}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(`{"n":${i}}`);
      ids.push(res.headers.get('nvcf-reqid')!);
    }
    for (const requestId of ids) await expect.poll(() => storedOf(requestId), { timeout: 10_000 }).toEqual({});
    expect((await status(ids[0]!)).status).toBe(404);
  });

  it('keeps a result claimable when the client drops mid-body, hands it whole once, then answers 404', async () => {
    // The largest body that stays inline: more than loopback's socket buffers hold.
    const big = Buffer.alloc(5 * 1024 * 1024, 'r');
    const done = gate();
    rig.container.route = async (_req, res) => {
      await done.opened;
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(big);
    };
    const first = await pexec({ 'nvcf-poll-seconds': '1' });
    expect(first.status).toBe(202);
    const requestId = first.headers.get('nvcf-reqid')!;
    done.open();
    const jsm = await rig.nc.jetstreamManager();
    await expect
      .poll(
        () =>
          jsm.streams
            .getMessage(streams.results, {
              last_by_subj: subjects.response(subjects.replyTo(requestId, 'gw-test'), 'final'),
            })
            .then(
              () => true,
              () => false,
            ),
        { timeout: 10_000 },
      )
      .toBe(true);
    // A client with a small receive buffer that reads the status line and goes away.
    const seen = await new Promise<string>((resolve) =>
      execFile('python3', ['-c', DROPPING_CLIENT, new URL(rig.gateway.url).port, requestId], (err, stdout) =>
        resolve(err ? `the client failed: ${err.message}` : stdout.trim()),
      ),
    );
    expect(seen).toBe('HTTP/1.1 200 OK');
    const again = await finalOf(requestId);
    expect(again.status).toBe(200);
    expect(Buffer.from(await again.arrayBuffer()).equals(big)).toBe(true);
    expect((await status(requestId)).status).toBe(404);
  });

  it('ends a request with a clear problem when one of its response messages cannot be read', async () => {
    const done = gate();
    rig.container.route = async (_req, res) => {
      await done.opened;
      res.writeHead(200).end('too late');
    };
    try {
      const first = await pexec({ 'nvcf-poll-seconds': '1' });
      expect(first.status).toBe(202);
      const requestId = first.headers.get('nvcf-reqid')!;
      await rig.nc.jetstream().publish(`nvcf.rs.gw-test.${requestId}.final`, new TextEncoder().encode('not a frame'));
      const broken = await status(requestId, 10);
      expect(broken.status).toBe(502);
      expect(broken.headers.get('content-type')).toBe('application/problem+json');
      expect(broken.headers.get('nvcf-reqid')).toBe(requestId);
      expect(((await broken.json()) as { detail: string }).detail).toMatch(/could not read a response message/);
      expect((await status(requestId)).status).toBe(404);
    } finally {
      done.open();
    }
  });

  it("relays a container's own 302 with its Location in compatibility mode", async () => {
    rig.container.route = (_req, res) => {
      res.writeHead(302, { location: 'https://example.org/elsewhere?x=1' }).end();
    };
    const res = await pexec();
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('https://example.org/elsewhere?x=1');
  });

  it('answers a waiting caller with each progress step as it happens, under a 60 s window', async () => {
    const steps = [gate(), gate(), gate()];
    rig.container.route = async (req, res) => {
      const file = join(String(req.headers['nvcf-large-output-dir']), 'progress');
      const id = String(req.headers['nvcf-reqid']);
      for (const [i, progress] of [10, 50, 90].entries()) {
        await steps[i]!.opened;
        await writeFile(file, JSON.stringify({ id, progress, partialResponse: { step: progress } }));
      }
      await done.opened;
      res.writeHead(200).end('{"done":true}');
    };
    const done = gate();
    const window = { 'nvcf-poll-seconds': '60' };
    steps[0]!.open();
    const first = await pexec(window);
    expect(first.status).toBe(202);
    expect(first.headers.get('nvcf-percent-complete')).toBe('10');
    expect(await first.json()).toEqual({ step: 10 });
    const requestId = first.headers.get('nvcf-reqid')!;
    for (const [i, progress] of [50, 90].entries()) {
      // The poll starts before the step exists: it waits for the change, not for its window.
      const poll = status(requestId, 60);
      setTimeout(() => steps[i + 1]!.open(), 300);
      const answer = await poll;
      expect(answer.status).toBe(202);
      expect(answer.headers.get('nvcf-percent-complete')).toBe(String(progress));
      expect(await answer.json()).toEqual({ step: progress });
    }
    const last = status(requestId, 60);
    setTimeout(() => done.open(), 300);
    const answer = await last;
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ done: true });
  }, 30_000);

  it('holds a stream back at the container while its client does not read, in neither the gateway nor NATS, and then delivers every byte', async () => {
    const MiB = 1024 * 1024;
    const event = Buffer.from(`data: ${'x'.repeat(MiB - 8)}\n\n`);
    const total = 192;
    let written = 0;
    rig.container.route = async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (let i = 0; i < total && !res.destroyed; i++) {
        if (!res.write(event)) await drained(res);
        written++;
      }
      res.end();
    };
    const jsm = await rig.nc.jetstreamManager();
    const storedBytes = async () => (await jsm.streams.info(streams.results)).state.bytes;
    const before = { stored: await storedBytes(), memory: process.memoryUsage().arrayBuffers };
    const res = await pexec({ accept: 'text/event-stream' });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let received = (await reader.read()).value?.length ?? 0;
    // The client reads nothing more for a while; the container, with the whole stream to write,
    // gets only as far as the worker's allowance past what the gateway wrote to the client.
    await sleep(5_000);
    expect(written).toBeLessThan(total);
    expect(await storedBytes()).toBeLessThan(before.stored + 48 * MiB);
    expect(process.memoryUsage().arrayBuffers - before.memory).toBeLessThan(96 * MiB);
    for (let next = await reader.read(); !next.done; next = await reader.read()) received += next.value.length;
    expect(received).toBe(total * event.length);
    expect(written).toBe(total);
  }, 120_000);
});
