#!/usr/bin/env node
// The chaos suite's inference container, run as its own process so it can be killed and
// restarted on the same port. POST /echo answers the request body after `x-sleep-ms`.
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? 0);

async function handle(req, res) {
  if (req.url === '/v2/health/ready') return void res.writeHead(200).end();
  const parts = [];
  for await (const chunk of req) parts.push(chunk);
  const sleepMs = Number(req.headers['x-sleep-ms'] ?? 0);
  if (sleepMs > 0) await new Promise((r) => setTimeout(r, sleepMs));
  res.writeHead(200, { 'content-type': 'application/json', 'x-seen-reqid': String(req.headers['nvcf-reqid'] ?? '') });
  res.end(Buffer.concat(parts));
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
