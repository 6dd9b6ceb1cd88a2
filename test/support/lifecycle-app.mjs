// A stand-in for a user's inference container, run by the harness as a `localCommand`: it must
// listen on INFERENCE_PORT. POST /infer echoes the JSON body with this process's pid; with
// `Accept: text/event-stream` it streams three tokens; `{"progress": true}` writes a progress
// file first; `{"file": "name.txt"}` writes an output file (a zip behind a 302). FAIL_AT_START=<text> makes it print the text and exit, as a broken image would.
import { createServer } from 'node:http';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

if (process.env.FAIL_AT_START) {
  process.stderr.write(`${process.env.FAIL_AT_START}\n`);
  process.exit(3);
}

async function handle(req, res) {
  if (req.method === 'GET' && req.url === '/v2/health/ready') return res.writeHead(200).end('ok');
  if (req.method !== 'POST' || req.url !== '/infer') return res.writeHead(404).end();
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const text = Buffer.concat(chunks).toString() || '{}';
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    return res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"not JSON"}');
  }
  if (String(req.headers.accept).includes('text/event-stream')) {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const token of ['Hello', 'from', 'the', 'lifecycle']) {
      res.write(`data: ${JSON.stringify({ token })}\n\n`);
      await sleep(150);
    }
    return res.end('data: [DONE]\n\n');
  }
  const outDir = req.headers['nvcf-large-output-dir'];
  if (body.progress && outDir) {
    const progress = JSON.stringify({ id: req.headers['nvcf-reqid'], progress: 50, partialResponse: { step: 'half' } });
    await writeFile(join(outDir, 'progress.partial'), progress);
    await rename(join(outDir, 'progress.partial'), join(outDir, 'progress'));
    await sleep(2500);
  }
  if (body.file && outDir) {
    await writeFile(join(outDir, 'result.partial'), `result for ${JSON.stringify(body)}\n`);
    await rename(join(outDir, 'result.partial'), join(outDir, String(body.file).replace(/[^a-z0-9.]/gi, '_')));
  }
  if (body.sleepMs) await sleep(Math.min(10_000, body.sleepMs));
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ echo: body, pid: process.pid }));
}

const server = createServer((req, res) => void handle(req, res));
server.listen(Number(process.env.INFERENCE_PORT), '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
