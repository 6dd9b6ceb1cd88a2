import { once } from 'node:events';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { heldEcho } from '../support/container.js';
import { waitForStatus } from '../support/gateway.js';
import { useRig } from '../support/rig.js';

describe('a gateway that stops while callers wait', () => {
  const held = heldEcho();
  // Each test starts the gateways it stops.
  const rig = useRig({
    container: held.route,
    worker: { env: { LOG_LEVEL: 'warn' } },
  });
  // After-hooks run last-registered first: the held request ends before the rig stops the worker.
  afterAll(() => held.release());

  it('answers a pexec call still inside its window 202 with its request id, and the result waits for the next gateway', async () => {
    const first = await rig.startGateway();
    const { FUNCTION_ID: fid, FUNCTION_VERSION_ID: fvid } = rig.worker.env;
    await waitForStatus(first.url, fid!, fvid!, 'ACTIVE');
    const call = fetch(`${first.url}/v2/nvcf/pexec/functions/${fid}/versions/${fvid}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"token":"kept"}',
    });
    await expect.poll(() => rig.container.seen.length).toBe(1);
    await first.stop();
    // Without a request id the caller could never ask for this result again.
    const answer = await call;
    expect(answer.status).toBe(202);
    const requestId = answer.headers.get('nvcf-reqid');
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    held.release();

    const gw = await rig.startGateway({ GATEWAY_PORT: String(first.gateway.port) });
    const done = await fetch(`${gw.url}/v2/nvcf/pexec/status/${requestId}`, { headers: { 'nvcf-poll-seconds': '20' } });
    expect(done.status).toBe(200);
    expect(await done.text()).toBe('{"token":"kept"}');
  });

  it('answers a pexec call whose body is still arriving when it stops, with its request id, on a connection it then closes', async () => {
    held.release();
    const gateway = await rig.startGateway();
    const { FUNCTION_ID: fid, FUNCTION_VERSION_ID: fvid } = rig.worker.env;
    await waitForStatus(gateway.url, fid!, fvid!, 'ACTIVE');
    const { port } = new URL(gateway.url);
    const body = '{"token":"late"}';
    const socket = connect(Number(port), '127.0.0.1');
    await once(socket, 'connect');
    socket.write(
      `POST /v2/nvcf/pexec/functions/${fid}/versions/${fvid} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nNVCF-POLL-SECONDS: 30\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
    );
    let answer = '';
    socket.on('data', (chunk: Buffer) => (answer += chunk.toString()));
    const ended = once(socket, 'close');
    await sleep(100);
    const stopped = gateway.stop();
    await sleep(100);
    socket.write(body.slice(5));
    await ended;
    await stopped;
    // Cut off here, the caller would have no id for a request that may well be queued.
    expect(answer).toMatch(/^HTTP\/1\.1 (200|202) /);
    expect(answer).toMatch(/\r\nnvcf-reqid: [0-9a-f-]{36}\r\n/i);
    expect(answer).toMatch(/\r\nconnection: close\r\n/i);
  });
});
