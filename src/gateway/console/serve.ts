import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { fileURLToPath } from 'node:url';
import { HttpProblem } from '../front/http.js';
import type { Route } from '../front/http.js';

/**
 * The web console: static files with no build step (plain HTML and ES modules) that call the
 * gateway's own API from the browser. They hold no secret, so they are served without the API
 * key; the page asks for the key and sends it with each API call.
 */
const STATIC_DIR = fileURLToPath(new URL('./static/', import.meta.url));
const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
};

async function sendFile(res: ServerResponse, name: string): Promise<void> {
  const match = /^[a-z0-9-]+\.(html|js|css)$/.exec(name);
  if (!match) throw new HttpProblem(404, `no console file ${name.slice(0, 64)}`);
  let body: Buffer;
  try {
    body = await readFile(`${STATIC_DIR}${name}`);
  } catch {
    throw new HttpProblem(404, `no console file ${name}`);
  }
  res.writeHead(200, {
    'content-type': TYPES[match[1]!]!,
    'content-length': body.length,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
  });
  res.end(body);
}

export const consoleRoutes: (Route & { open: true })[] = [
  { method: 'GET', pattern: /^\/console\/?$/, handler: (_c, _q, s) => sendFile(s, 'index.html'), open: true },
  { method: 'GET', pattern: /^\/console\/([^/]+)$/, handler: (_c, _q, s, [name]) => sendFile(s, name!), open: true },
];
