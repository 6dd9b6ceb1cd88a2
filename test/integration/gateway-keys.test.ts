import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { gate } from '../support/container.js';
import { useRig } from '../support/rig.js';

/** A raw connection, for the clients no HTTP library would write: trickling headers or a body. */
async function rawConnection(port: number): Promise<{
  socket: Socket;
  received: () => string;
  closed: Promise<void>;
}> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.on('error', () => undefined);
  return { socket, received: () => text, closed };
}

describe('API keys, one per client, and callers that trickle', () => {
  const rig = useRig({
    worker: { env: { LOG_LEVEL: 'warn' } },
    gateway: {
      env: {
        GATEWAY_API_KEYS: 'alice:key-of-alice, bob:key-of-bob',
        GATEWAY_HEADERS_TIMEOUT: '1s',
        GATEWAY_BODY_IDLE_TIMEOUT: '1s',
        GATEWAY_MAX_REQUEST_BYTES: String(2 * 1024 * 1024),
      },
      awaitStatus: 'ACTIVE',
      apiKey: 'key-of-alice',
    },
  });
  const alice = { authorization: 'Bearer key-of-alice' };
  const bob = { authorization: 'Bearer key-of-bob' };
  const pexecUrl = () => `${rig.gateway.url}/v2/nvcf/pexec/functions/${rig.worker.env.FUNCTION_ID}`;

  it('answers 404 to another client polling a request, and hands the result to the client that made it', async () => {
    const released = gate();
    rig.container.route = async (_req, res) => {
      await released.opened;
      res.writeHead(200, { 'content-type': 'text/plain' }).end("alice's answer");
    };
    const first = await fetch(pexecUrl(), {
      method: 'POST',
      headers: { ...alice, 'NVCF-POLL-SECONDS': '1' },
      body: 'mine',
    });
    expect(first.status).toBe(202);
    const requestId = first.headers.get('nvcf-reqid')!;
    released.open();
    const stolen = await fetch(`${rig.gateway.url}/v2/nvcf/pexec/status/${requestId}`, {
      headers: { ...bob, 'NVCF-POLL-SECONDS': '5' },
    });
    expect(stolen.status).toBe(404);
    const position = await fetch(`${rig.gateway.url}/v2/nvcf/queues/${requestId}/position`, { headers: bob });
    expect(position.status).toBe(404);
    const mine = await fetch(`${rig.gateway.url}/v2/nvcf/pexec/status/${requestId}`, {
      headers: { ...alice, 'NVCF-POLL-SECONDS': '30' },
    });
    expect(mine.status).toBe(200);
    expect(await mine.text()).toBe("alice's answer");
  });

  it('tells the container which client called, in NVCF-SUB', async () => {
    const res = await fetch(pexecUrl(), { method: 'POST', headers: bob, body: 'x' });
    expect(res.status).toBe(200);
    expect(rig.container.seen.at(-1)!.headers['nvcf-sub']).toBe('bob');
  });

  it('refuses a wrong key at once and closes the connection, without waiting for the body it announced', async () => {
    const { socket, received, closed } = await rawConnection(rig.gateway.gateway.port);
    socket.write(
      `POST /v2/nvcf/pexec/functions/${rig.worker.env.FUNCTION_ID} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer wrong\r\n` +
        'Content-Length: 1000000\r\n\r\nonly the first bytes',
    );
    await closed;
    expect(received()).toMatch(/^HTTP\/1\.1 401 /);
    expect(received()).toMatch(/connection: close/i);
  });

  it('cuts a caller that stops sending its headers', async () => {
    const { socket, received, closed } = await rawConnection(rig.gateway.gateway.port);
    socket.write(`GET /v2/nvcf/functions HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: `);
    await closed;
    expect(received()).not.toMatch(/^HTTP\/1\.1 200/);
  });

  it('cuts a caller with the right key whose body stops arriving', async () => {
    const { socket, closed } = await rawConnection(rig.gateway.gateway.port);
    socket.write(
      `POST /v2/nvcf/pexec/functions/${rig.worker.env.FUNCTION_ID} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer key-of-alice\r\n` +
        'Content-Length: 100\r\n\r\nten bytes.',
    );
    const before = rig.container.seen.length;
    await closed;
    expect(rig.container.seen.length).toBe(before);
  });

  it('refuses a body sent without a length once it passes GATEWAY_MAX_REQUEST_BYTES, and queues nothing', async () => {
    const before = rig.container.seen.length;
    const piece = new Uint8Array(256 * 1024).fill(7);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        // 3 MiB in all, past the 2 MiB limit; the length is not declared, so only counting can tell.
        if (sent >= 12) return controller.close();
        sent++;
        controller.enqueue(piece);
      },
    });
    const res = await fetch(pexecUrl(), {
      method: 'POST',
      headers: alice,
      body,
      duplex: 'half',
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { detail: string }).detail).toContain('2097152');
    expect(rig.container.seen.length).toBe(before);
  });

  it('carries a body larger than one message, sent without a length, to the container byte for byte', async () => {
    const bytes = new Uint8Array(1536 * 1024).map((_, i) => (i * 31) % 251);
    const res = await fetch(pexecUrl(), {
      method: 'POST',
      headers: alice,
      body: new Blob([bytes]).stream(),
      duplex: 'half',
    });
    const answer = Buffer.from(await res.arrayBuffer());
    expect(res.status, answer.subarray(0, 300).toString()).toBe(200);
    expect(answer.equals(Buffer.from(bytes))).toBe(true);
  });
});
