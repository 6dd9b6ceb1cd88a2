import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export interface SeenRequest {
  method: string;
  url: string;
  /** Header names exactly as they arrived on the wire, with their values. */
  rawHeaders: [string, string][];
  headers: IncomingMessage['headers'];
  body: Buffer;
}

export type Route = (req: IncomingMessage & { body: Buffer }, res: ServerResponse) => void | Promise<void>;

/** The request's own output directory, as the worker tells the container (NVCF-LARGE-OUTPUT-DIR). */
export const outputDirOf = (req: { headers: Record<string, unknown> }): string =>
  String(req.headers['nvcf-large-output-dir']);

/**
 * A real HTTP server on 127.0.0.1:0 standing in for the inference container. It answers
 * /v2/health/ready with `healthStatus`, records every other request and tracks how many run
 * at once.
 */
export class TestContainer {
  readonly seen: SeenRequest[] = [];
  healthStatus = 200;
  concurrent = 0;
  maxConcurrent = 0;
  private server: Server | undefined;

  constructor(public route: Route) {}

  static async start(route: Route): Promise<TestContainer> {
    const container = new TestContainer(route);
    await container.listen(0);
    return container;
  }

  get port(): number {
    return (this.server!.address() as AddressInfo).port;
  }

  async listen(port: number): Promise<void> {
    this.server = createServer((req, res) => void this.serve(req, res));
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.url === '/v2/health/ready') {
      res.writeHead(this.healthStatus).end();
      return;
    }
    this.concurrent++;
    this.maxConcurrent = Math.max(this.maxConcurrent, this.concurrent);
    res.on('close', () => this.concurrent--);
    const parts: Buffer[] = [];
    for await (const chunk of req) parts.push(chunk as Buffer);
    const body = Buffer.concat(parts);
    const rawHeaders: [string, string][] = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) rawHeaders.push([req.rawHeaders[i]!, req.rawHeaders[i + 1]!]);
    this.seen.push({ method: req.method!, url: req.url!, rawHeaders, headers: req.headers, body });
    try {
      await this.route(Object.assign(req, { body }), res);
    } catch (err) {
      res.destroy(err as Error);
    }
  }

  async close(): Promise<void> {
    if (!this.server?.listening) return;
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server!.close(resolve));
  }
}

export const echo: Route = (req, res) => {
  res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' });
  res.end(req.body);
};

/** Echoes the body after waiting as many milliseconds as the X-Sleep-Ms header asks (none by default). */
export const sleepyEcho: Route = async (req, res) => {
  await sleep(Number(req.headers['x-sleep-ms'] ?? 0));
  res.writeHead(200).end(req.body);
};

/**
 * A route that holds every request until `release()` is called, then echoes its body as JSON:
 * for tests of what happens around a request still in flight.
 */
export function heldEcho(): { route: Route; release: () => void } {
  const held = gate();
  const route: Route = async (req, res) => {
    await held.opened;
    res.writeHead(200, { 'content-type': 'application/json' }).end(req.body);
  };
  return { route, release: held.open };
}

/** A promise and the function that settles it, for a container that waits on the test. */
export function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}
