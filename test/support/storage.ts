import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';

/**
 * A real HTTP object store on 127.0.0.1:0 standing in for presigned storage: GET /objects/<key>
 * serves a stored file, PUT /objects/<key> stores one (streamed to disk). `failPuts` makes the
 * next PUTs answer that status, to exercise retries.
 */
export class TestStorage {
  readonly failPuts: number[] = [];
  puts = 0;
  private readonly server: Server;
  private constructor(readonly dir: string) {
    this.server = createServer((req, res) => void this.serve(req, res));
  }

  static async start(): Promise<TestStorage> {
    const storage = new TestStorage(await mkdtemp(join(tmpdir(), 'nvcf-storage-')));
    await new Promise<void>((resolve) => storage.server.listen(0, '127.0.0.1', resolve));
    return storage;
  }

  url(key: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/objects/${key}`;
  }

  path(key: string): string {
    return join(this.dir, key);
  }

  private async serve(
    req: import('node:http').IncomingMessage,
    res: import('node:http').ServerResponse,
  ): Promise<void> {
    const key = /^\/objects\/([\w.-]+)$/.exec(req.url ?? '')?.[1];
    if (!key) return void res.writeHead(404).end();
    if (req.method === 'PUT') {
      this.puts++;
      const fail = this.failPuts.shift();
      if (fail) {
        req.resume();
        return void res.writeHead(fail).end();
      }
      try {
        await pipeline(req, createWriteStream(this.path(key)));
        res.writeHead(200).end();
      } catch {
        res.destroy();
      }
      return;
    }
    const size = await stat(this.path(key)).then(
      (s) => s.size,
      () => -1,
    );
    if (size < 0) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': size });
    await pipeline(createReadStream(this.path(key)), res).catch(() => undefined);
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
    await rm(this.dir, { recursive: true, force: true });
  }
}
