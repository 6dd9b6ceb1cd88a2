import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Upload {
  bytes: number;
  sha256: string;
  /** Wall-clock ms of the first and the last byte. */
  firstByteAt: number;
  lastByteAt: number;
}

/**
 * Storage for large results, as far as the benchmark needs it: accepts a PUT, hashes the bytes as
 * they stream through and keeps nothing else, so a 1 GiB zip costs this process no memory.
 */
export class UploadSink {
  private readonly uploads = new Map<string, Upload>();
  private readonly waiters = new Map<string, (u: Upload) => void>();

  private constructor(private readonly server: Server) {}

  static async start(): Promise<UploadSink> {
    const server = createServer();
    const sink = new UploadSink(server);
    server.on('request', (req, res) => {
      const id = new URL(req.url ?? '/', 'http://sink').pathname.slice(1);
      if (req.method !== 'PUT') return void res.writeHead(405).end();
      const hash = createHash('sha256');
      let bytes = 0;
      let firstByteAt = 0;
      req.on('data', (part: Buffer) => {
        firstByteAt ||= performance.timeOrigin + performance.now();
        bytes += part.length;
        hash.update(part);
      });
      req.on('end', () => {
        const upload = {
          bytes,
          sha256: hash.digest('hex'),
          firstByteAt,
          lastByteAt: performance.timeOrigin + performance.now(),
        };
        sink.uploads.set(id, upload);
        sink.waiters.get(id)?.(upload);
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return sink;
  }

  url(id: string): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/${id}`;
  }

  /** Resolves when the upload of `id` has completed (at once if it already has). */
  upload(id: string): Promise<Upload> {
    const done = this.uploads.get(id);
    if (done) return Promise.resolve(done);
    return new Promise((resolve) => this.waiters.set(id, resolve));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
