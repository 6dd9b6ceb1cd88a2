#!/usr/bin/env node
// The smallest inference container: answers health checks and echoes what it is sent.
// Node's standard library only, so `nvcf-sidecar dev --demo` runs it on a fresh machine.
//
//   PORT=8000 node examples/01-echo/server.mjs
//   POST /echo                              -> the request body back, same Content-Type
//   POST /echo  (Accept: text/event-stream) -> the body back as three server-sent events
//   GET  /v2/health/ready                   -> 200
import { createServer } from 'node:http';

const host = process.env.HOST ?? '127.0.0.1';
const port = Number(process.env.PORT ?? 8000);

async function handle(req, res) {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/v2/health/ready') return void res.writeHead(200).end();
  if (path !== '/echo')
    return void res
      .writeHead(404, { 'content-type': 'application/json' })
      .end(JSON.stringify({ error: `no route ${path}` }));
  const parts = [];
  for await (const chunk of req) parts.push(chunk);
  const body = Buffer.concat(parts);
  if (/text\/event-stream/.test(req.headers.accept ?? '')) {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    for (let i = 1; i <= 3; i++) {
      res.write(`id: ${i}\ndata: ${JSON.stringify({ part: i, of: 3, echo: body.toString('utf8') })}\n\n`);
      await new Promise((r) => setTimeout(r, 200));
    }
    return void res.end();
  }
  res.writeHead(200, {
    'content-type': req.headers['content-type'] ?? 'application/octet-stream',
    'x-request-id': String(req.headers['nvcf-reqid'] ?? ''),
  });
  res.end(body);
}

const server = createServer((req, res) => {
  handle(req, res).catch((err) => res.destroy(err));
});

server.listen(port, host, () => {
  // The first line names the real port, so a launcher can ask for port 0.
  console.log(`echo container listening on http://${host}:${server.address().port}`);
});
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
