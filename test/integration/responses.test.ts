import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { problemOf } from '../support/client.js';
import { invocationFor } from '../support/env.js';
import { useRig } from '../support/rig.js';

describe('what the caller gets back', () => {
  const rig = useRig({ worker: { env: { MAX_REQUEST_CONCURRENCY: '4', STREAM_READER_TIMEOUT: '2s' } } });

  it('turns a container 422 {"error": "bad input"} into problem+json with status 422 and that detail', async () => {
    rig.container.route = (_req, res) =>
      void res.writeHead(422, { 'content-type': 'application/json' }).end('{"error":"bad input"}');
    const invocation = invocationFor(rig.worker.env);
    const result = await rig.client.result(await rig.client.invoke(invocation, Buffer.from('{}')));
    expect(result.status).toBe(422);
    expect(result.headers).toContainEqual(['Content-Type', 'application/problem+json']);
    expect(problemOf(result.body)).toEqual({
      type: 'urn:inference-service:problem-details:unprocessable-entity',
      title: 'Unprocessable Entity',
      status: 422,
      detail: 'bad input',
      requestId: invocation.requestId,
    });
  });

  it('says "Inference error" when the container error has no error field', async () => {
    rig.container.route = (_req, res) => void res.writeHead(503).end('overloaded');
    const result = await rig.client.result(await rig.client.invoke(invocationFor(rig.worker.env)));
    expect(result.status).toBe(503);
    expect(problemOf(result.body)).toMatchObject({
      type: 'urn:inference-service:problem-details:service-unavailable',
      detail: 'Inference error',
    });
  });

  it('passes a container error through verbatim when compatibility is disabled by header', async () => {
    rig.container.route = (_req, res) => void res.writeHead(422, { 'content-type': 'text/plain' }).end('raw error');
    const invocation = invocationFor(rig.worker.env, {
      headers: [['nvcf-feature-disable-worker-compatibility', 'true']],
    });
    const result = await rig.client.result(await rig.client.invoke(invocation));
    expect(result.status).toBe(422);
    expect(result.body.toString()).toBe('raw error');
    expect(result.headers).toContainEqual(['content-type', 'text/plain']);
  });

  it('streams SSE: the first event reaches the subscriber before the container has finished', async () => {
    let finishedAt = 0;
    rig.container.route = async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: first\n\n');
      await sleep(700);
      res.write('data: second\n\n');
      finishedAt = Date.now();
      res.end();
    };
    const started = Date.now();
    const invocation = invocationFor(rig.worker.env, { headers: [['Accept', 'text/event-stream']] });
    const result = await rig.client.result(await rig.client.invoke(invocation));
    expect(result.streamed).toBe(true);
    expect(result.body.toString()).toBe('data: first\n\ndata: second\n\n');
    const firstData = result.timeline.find((e) => e.type === 'data')!;
    expect(started + firstData.at).toBeLessThan(finishedAt);
    expect(rig.container.seen.at(-1)!.headers['nvcf-poll-seconds']).toBeDefined();
  });

  it('ends a stream nobody reads once it is 8 MiB ahead and no reader has reported for STREAM_READER_TIMEOUT, and lets the container go', async () => {
    const event = Buffer.from(`data: ${'x'.repeat(1024 * 1024 - 8)}\n\n`);
    const total = 64;
    let written = 0;
    const containerLetGo = new Promise<void>((resolve) => {
      rig.container.route = async (_req, res) => {
        res.once('close', () => resolve());
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (let i = 0; i < total && !res.destroyed; i++) {
          if (!res.write(event)) await new Promise((r) => res.once('drain', r).once('close', r));
          if (!res.destroyed) written++;
        }
        res.end();
      };
    });
    // Read straight from NATS: no gateway reports where a client is, as after a gateway's death.
    const invocation = invocationFor(rig.worker.env, { headers: [['Accept', 'text/event-stream']] });
    const result = await rig.client.result(await rig.client.invoke(invocation));
    await containerLetGo;
    expect(result.streamed).toBe(true);
    expect(result.error).toMatch(/nobody has read the stream for 2s/);
    expect(written).toBeLessThan(total);
    expect(result.body.length).toBeLessThan(total * event.length);
  });

  it('never buffers a text/event-stream response even when the request did not ask for SSE', async () => {
    rig.container.route = async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: a\n\n');
      await sleep(300);
      res.end('data: b\n\n');
    };
    const result = await rig.client.result(await rig.client.invoke(invocationFor(rig.worker.env)));
    expect(result.streamed).toBe(true);
    expect(result.timeline.filter((e) => e.type === 'data').length).toBeGreaterThanOrEqual(2);
  });

  it('fails a body over NVCF-MAX-RESPONSE-SIZE-BYTES clearly when the request has no upload URL', async () => {
    rig.container.route = (_req, res) => void res.writeHead(200).end(Buffer.alloc(1024 + 1));
    const result = await rig.client.result(
      await rig.client.invoke(invocationFor(rig.worker.env, { maxResponseSizeBytes: 1024 })),
    );
    expect(result.status).toBe(500);
    expect(String(problemOf(result.body).detail)).toMatch(
      /^Internal error while uploading the large response: .*no (upload|download) URL/,
    );
  });

  it('keeps a body of exactly NVCF-MAX-RESPONSE-SIZE-BYTES inline', async () => {
    rig.container.route = (_req, res) => void res.writeHead(200).end(Buffer.alloc(1024, 7));
    const result = await rig.client.result(
      await rig.client.invoke(invocationFor(rig.worker.env, { maxResponseSizeBytes: 1024 })),
    );
    expect(result.status).toBe(200);
    expect(result.body.length).toBe(1024);
  });

  it('fails clearly when the container leaves output files but the request has no upload URL', async () => {
    rig.container.route = async (req, res) => {
      await writeFile(join(String(req.headers['nvcf-large-output-dir']), 'image.png'), 'png');
      res.writeHead(200).end('{}');
    };
    const result = await rig.client.result(await rig.client.invoke(invocationFor(rig.worker.env)));
    expect(result.status).toBe(500);
    expect(String(problemOf(result.body).detail)).toMatch(/left 1 output file\(s\) but the request has no upload URL/);
  });

  it('answers a container 202 in compatibility mode with a clear error', async () => {
    rig.container.route = (_req, res) => void res.writeHead(202).end();
    const result = await rig.client.result(await rig.client.invoke(invocationFor(rig.worker.env)));
    expect(result.status).toBe(500);
    expect(String(problemOf(result.body).detail)).toMatch(/reserves for progress/);
  });

  it('aborts the container call when a cancel message names the request', async () => {
    let aborted = false;
    rig.container.route = (req, res) => {
      res.on('close', () => (aborted = !res.writableEnded));
    };
    const invocation = invocationFor(rig.worker.env);
    const replyTo = await rig.client.invoke(invocation);
    const pending = rig.client.result(replyTo);
    while (rig.container.concurrent === 0) await sleep(10);
    rig.client.cancel(invocation.functionVersionId, invocation.requestId);
    const result = await pending;
    expect(result.status).toBe(500);
    expect(String(problemOf(result.body).detail)).toMatch(/cancelled/);
    await expect.poll(() => aborted).toBe(true);
  });

  it('aborts the container call at the request deadline', async () => {
    rig.container.route = () => undefined;
    const result = await rig.client.result(
      await rig.client.invoke(invocationFor(rig.worker.env, { deadline: Date.now() + 500 })),
    );
    expect(result.status).toBe(504);
    expect(String(problemOf(result.body).detail)).toMatch(/did not finish before the request deadline/);
  });

  it('answers expired work with an error without calling the container', async () => {
    const before = rig.container.seen.length;
    const invocation = invocationFor(rig.worker.env, { pollSeconds: 5, requestTime: Date.now() - 8_000 });
    const result = await rig.client.result(await rig.client.invoke(invocation));
    expect(result.status).toBe(500);
    expect(problemOf(result.body)).toMatchObject({
      type: 'urn:nvcf-worker-service:problem-details:internal-server-error',
      detail: expect.stringMatching(
        /^Internal error while making inference request: the request waited 8\.\ds for a worker/,
      ),
    });
    expect(rig.container.seen.length).toBe(before);
  });
});

describe('a container that is not listening', () => {
  const rig = useRig({ worker: true });

  it('gives a 500 urn:inference-connection problem', async () => {
    await rig.container.close();
    const result = await rig.client.result(await rig.client.invoke(invocationFor(rig.worker.env)));
    expect(result.status).toBe(500);
    expect(problemOf(result.body)).toMatchObject({
      type: 'urn:inference-connection:problem-details:internal-server-error',
      detail: expect.stringContaining('Inference connection error while making inference request'),
    });
  });
});
