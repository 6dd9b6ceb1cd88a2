import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NatsConnection } from 'nats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProtocolClient } from '../../src/gateway/protocol-client.js';
import { NatsServer } from '../../src/dev/nats-server.js';
import { TestContainer, echo } from '../support/container.js';
import { clientFor, invocationFor, startWorker, workerEnv, type RunningWorker } from '../support/env.js';

describe('a request published on the work queue', () => {
  let nats: NatsServer;
  let container: TestContainer;
  let worker: RunningWorker;
  let nc: NatsConnection;
  let client: ProtocolClient;
  let bodyServer: Server;
  const parked = new Map<string, Buffer>();

  beforeAll(async () => {
    nats = await NatsServer.start();
    container = await TestContainer.start(echo);
    worker = await startWorker(await workerEnv(nats.url, container.port, { MAX_REQUEST_CONCURRENCY: '4' }));
    ({ nc, client } = await clientFor(nats.url));
    bodyServer = createServer((req, res) => {
      const body = parked.get(req.url!);
      if (!body) return void res.writeHead(404).end();
      res.writeHead(200, { 'content-length': body.length }).end(body);
    });
    await new Promise<void>((r) => bodyServer.listen(0, '127.0.0.1', r));
  });

  afterAll(async () => {
    await worker?.stop();
    await nc?.close();
    await container?.close();
    bodyServer?.close();
    await nats?.dispose();
  });

  for (const [label, size] of [
    ['0 B', 0],
    ['1 KiB', 1024],
    ['900 KiB', 900 * 1024],
  ] as const) {
    it(`comes back byte-exact with a ${label} binary body sent inline`, async () => {
      const body = randomBytes(size);
      const replyTo = await client.invoke(invocationFor(worker.env), body);
      const result = await client.result(replyTo);
      expect(result.status).toBe(200);
      expect(result.body.equals(body)).toBe(true);
      expect(container.seen.at(-1)!.body.equals(body)).toBe(true);
    });
  }

  it('comes back byte-exact with a 3 MiB binary body fetched by URL and returned in chunks', async () => {
    const body = randomBytes(3 * 1024 * 1024);
    parked.set('/body/3mib', body);
    const url = `http://127.0.0.1:${(bodyServer.address() as AddressInfo).port}/body/3mib`;
    const replyTo = await client.invoke(invocationFor(worker.env, { bodyUrl: url }));
    const result = await client.result(replyTo);
    expect(result.status).toBe(200);
    expect(container.seen.at(-1)!.body.equals(body)).toBe(true);
    expect(result.body.length).toBe(body.length);
    expect(result.body.equals(body)).toBe(true);
  });

  it('carries the container status and headers back with the body', async () => {
    container.route = (req, res) => {
      res.writeHead(201, { 'content-type': 'application/json', 'x-model-version': '7' });
      res.end(JSON.stringify({ created: true }));
    };
    try {
      const result = await client.result(await client.invoke(invocationFor(worker.env)));
      expect(result.status).toBe(201);
      expect(result.headers).toContainEqual(['x-model-version', '7']);
      expect(JSON.parse(result.body.toString())).toEqual({ created: true });
    } finally {
      container.route = echo;
    }
  });

  it('answers a body URL that cannot be fetched with a 500 problem and never calls the container', async () => {
    const before = container.seen.length;
    const url = `http://127.0.0.1:${(bodyServer.address() as AddressInfo).port}/body/missing`;
    const result = await client.result(await client.invoke(invocationFor(worker.env, { bodyUrl: url })));
    expect(result.status).toBe(500);
    const problem = JSON.parse(result.body.toString());
    expect(problem.type).toBe('urn:nvcf-worker-service:problem-details:internal-server-error');
    expect(problem.detail).toMatch(/request body answered 404/);
    expect(container.seen.length).toBe(before);
  });
});
