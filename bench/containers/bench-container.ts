import { createWriteStream, writeFileSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The inference container of the benchmarks, in its own process. What it does is chosen by the
 * `x-bench-mode` header (the gateway always calls one path, so the path cannot choose):
 *   echo (default)  the request body back, as application/json
 *   sse-fast        N small events, each its own write, yielding to the event loop in between
 *   sse-paced       N small events, one every 10 ms
 *   progress        N in-place writes of the progress file, 50 ms apart, then a small body
 *   renames         N small `.partial` files renamed to their final names, 50 ms apart
 *   large           one big output file (via `.partial`), M small files, then a body of B bytes
 * Every event and file carries the wall-clock time it was produced, so the bench can tell how
 * long each took to reach the client. GET /marks?id=<requestId> returns the rename times.
 */

const marks = new Map<string, Record<string, number>>();
const now = () => performance.timeOrigin + performance.now();
/** One MiB of incompressible bytes, written again and again: realistic for video or tensors. */
const block = Buffer.from(Array.from({ length: 1024 * 1024 }, (_, i) => (i * 2654435761) >>> 24));

function number(req: IncomingMessage, name: string, fallback: number): number {
  const value = req.headers[name];
  return typeof value === 'string' ? Number(value) : fallback;
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of req) parts.push(part as Buffer);
  return Buffer.concat(parts);
}

function mark(requestId: string, name: string): void {
  let record = marks.get(requestId);
  if (!record) marks.set(requestId, (record = {}));
  record[name] = now();
}

async function write(res: ServerResponse, text: string | Buffer): Promise<void> {
  if (!res.write(text)) await new Promise((resolve) => res.once('drain', resolve));
}

async function sse(res: ServerResponse, events: number, pauseMs: number): Promise<void> {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (let i = 0; i < events; i++) {
    await write(res, `data: {"i":${i},"t":${now()},"token":" lorem"}\n\n`);
    if (pauseMs > 0) await sleep(pauseMs);
    else await new Promise((resolve) => setImmediate(resolve));
  }
  res.end();
}

async function progress(req: IncomingMessage, res: ServerResponse, dir: string, requestId: string): Promise<void> {
  const steps = number(req, 'x-bench-steps', 20);
  for (let i = 1; i <= steps; i++) {
    // In place, as NVCF's Python helper does it: open("w") then write.
    writeFileSync(
      join(dir, 'progress'),
      JSON.stringify({ id: requestId, progress: Math.round((i * 100) / steps), partialResponse: { t: now() } }),
    );
    await sleep(50);
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end('{"done":true}');
}

async function renames(req: IncomingMessage, res: ServerResponse, dir: string, requestId: string): Promise<void> {
  const steps = number(req, 'x-bench-steps', 20);
  for (let i = 0; i < steps; i++) {
    const name = `out${i}.txt`;
    writeFileSync(join(dir, `${name}.partial`), block.subarray(0, 4096));
    mark(requestId, name);
    await rename(join(dir, `${name}.partial`), join(dir, name));
    await sleep(50);
  }
  res.writeHead(200, { 'content-type': 'application/json' }).end('{"done":true}');
}

async function writeBig(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(`${path}.partial`);
  for (let left = bytes; left > 0; left -= block.length) {
    if (!out.write(left >= block.length ? block : block.subarray(0, left)))
      await new Promise<void>((resolve) => out.once('drain', () => resolve()));
  }
  await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  await rename(`${path}.partial`, path);
}

async function large(req: IncomingMessage, res: ServerResponse, dir: string, requestId: string): Promise<void> {
  const fileBytes = number(req, 'x-bench-file-bytes', 0);
  const files = number(req, 'x-bench-files', 0);
  const bodyBytes = number(req, 'x-bench-body-bytes', 0);
  if (fileBytes > 0) {
    await writeBig(join(dir, 'video.mp4'), fileBytes);
    mark(requestId, 'video.mp4');
  }
  for (let i = 0; i < files; i++) writeFileSync(join(dir, `f${i}.txt`), block.subarray(0, 1024));
  if (files > 0) mark(requestId, 'files');
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': bodyBytes });
  for (let left = bodyBytes; left > 0; left -= block.length)
    await write(res, left >= block.length ? block : block.subarray(0, left));
  res.end();
}

const server = createServer((req, res) => {
  void (async () => {
    const url = new URL(req.url ?? '/', 'http://container');
    if (url.pathname === '/v2/health/ready') return void res.writeHead(200).end('ok');
    if (url.pathname === '/marks') {
      const record = marks.get(url.searchParams.get('id') ?? '') ?? {};
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(record));
    }
    const mode = req.headers['x-bench-mode'] ?? 'echo';
    const dir = String(req.headers['nvcf-large-output-dir'] ?? '');
    const requestId = String(req.headers['nvcf-reqid'] ?? '');
    const body = await readAll(req);
    if (mode === 'echo')
      return void res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length }).end(body);
    if (mode === 'sse-fast') return sse(res, number(req, 'x-bench-events', 2000), 0);
    if (mode === 'sse-paced') return sse(res, number(req, 'x-bench-events', 200), 10);
    if (mode === 'progress') return progress(req, res, dir, requestId);
    if (mode === 'renames') return renames(req, res, dir, requestId);
    if (mode === 'large') return large(req, res, dir, requestId);
    res.writeHead(400).end(`unknown mode ${String(mode)}`);
  })().catch((err: Error) => {
    if (!res.headersSent) res.writeHead(500).end(err.message);
    else res.destroy(err);
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(
    `${JSON.stringify({ msg: 'listening', port: typeof address === 'object' && address ? address.port : 0 })}\n`,
  );
});
process.on('SIGTERM', () => process.exit(0));
