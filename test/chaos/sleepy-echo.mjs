#!/usr/bin/env node
// The chaos suite's inference container, run as its own process so it can be killed and
// restarted on the same port. POST /echo answers the request body after `x-sleep-ms`
// (`x-echo-copies` copies of it, a newline between, for a large answer). A caller accepting
// `text/event-stream` gets `x-sse-events` events of `x-sse-event-bytes` each, as fast as the
// connection takes them.
import { createServer } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';

const port = Number(process.env.PORT ?? 0);

async function stream(req, res) {
  const events = Number(req.headers['x-sse-events'] ?? 10);
  const payload = 'x'.repeat(Number(req.headers['x-sse-event-bytes'] ?? 1024));
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (let i = 0; i < events && !res.destroyed; i++) {
    if (!res.write(`id: ${i}\ndata: ${payload}\n\n`)) await new Promise((r) => res.once('drain', r));
  }
  res.end();
}

async function handle(req, res) {
  if (req.url === '/v2/health/ready') return void res.writeHead(200).end();
  const parts = [];
  for await (const chunk of req) parts.push(chunk);
  const sleepMs = Number(req.headers['x-sleep-ms'] ?? 0);
  if (sleepMs > 0) await sleep(sleepMs);
  if (String(req.headers.accept ?? '').includes('text/event-stream')) return stream(req, res);
  const body = Buffer.concat(parts);
  const copies = Number(req.headers['x-echo-copies'] ?? 1);
  res.writeHead(200, { 'content-type': 'application/json', 'x-seen-reqid': String(req.headers['nvcf-reqid'] ?? '') });
  res.end(copies > 1 ? Buffer.from(Array.from({ length: copies }, () => body.toString()).join('\n')) : body);
}

const server = createServer((req, res) => {
  handle(req, res).catch((err) => res.destroy(err));
});

server.keepAliveTimeout = 30_000;
server.listen(port, '127.0.0.1', () =>
  console.log(
    JSON.stringify({ msg: 'listening', port: /** @type {import('node:net').AddressInfo} */ (server.address()).port }),
  ),
);
process.on('SIGTERM', () => server.close(() => process.exit(0)));
