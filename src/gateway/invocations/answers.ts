import type { Socket } from 'node:net';
import type { ServerResponse } from 'node:http';
import type { HeaderList } from '../../shared/protocol.js';
import type { GatewayContext } from '../context.js';
import { sendProblem } from '../front/http.js';

/** NVCF-STATUS as NVCF derives it from the status code. */
function nvcfStatus(status: number): string {
  if (status === 202) return 'in-progress';
  return status >= 200 && status < 400 ? 'fulfilled' : 'errored';
}

/** A 202 without progress: the caller keeps its request id and polls again. */
export function answerStillRunning(res: ServerResponse, requestId: string): void {
  res.writeHead(202, { 'NVCF-REQID': requestId, 'NVCF-STATUS': 'in-progress', 'content-length': 0 });
  res.end();
}

/** A 202 with the latest progress: NVCF-PERCENT-COMPLETE and the partialResponse as the body. */
export function answerProgress(
  res: ServerResponse,
  requestId: string,
  progress: { percentComplete: number; body: Uint8Array },
): void {
  const body = Buffer.from(progress.body);
  res.writeHead(202, {
    'NVCF-REQID': requestId,
    'NVCF-STATUS': 'in-progress',
    'NVCF-PERCENT-COMPLETE': String(progress.percentComplete),
    'content-type': 'application/json',
    'content-length': body.length,
  });
  res.end(body);
}

/** A problem about a known request: it carries the request id and NVCF-STATUS errored. */
export function answerProblem(res: ServerResponse, requestId: string, status: number, detail: string): void {
  sendProblem(res, status, detail, { 'NVCF-REQID': requestId, 'NVCF-STATUS': 'errored' }, requestId);
}

export function writeHead(
  res: ServerResponse,
  requestId: string,
  status: number,
  headers: HeaderList,
  length?: number,
): void {
  for (const [name, value] of headers) {
    // The gateway's CORS answer (front/cors.ts) wins: a second Allow-Origin makes browsers refuse both.
    if (/^access-control-/i.test(name) && res.hasHeader(name)) continue;
    try {
      res.appendHeader(name, value);
    } catch {
      // A header Node refuses to send would fail the whole answer; the body matters more.
    }
  }
  res.setHeader('NVCF-REQID', requestId);
  res.setHeader('NVCF-STATUS', nvcfStatus(status));
  if (length !== undefined) res.setHeader('content-length', length);
  res.writeHead(status);
}

/** Resolves when a slow client has taken what was written, or has gone away. */
export function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** An answer at least this large can still sit in the kernel's socket buffers when Node calls it sent. */
export const RECEIPT_PROOF_BYTES = 64 * 1024;

/**
 * After `sentWhole`: whether the client has really read the whole answer. Node's 'finish' says
 * only that the bytes reached the kernel, and several MiB can wait in socket buffers; a gateway
 * killed then loses them (measured on loopback: a 4 MiB answer to a slow reader, 'finish' when the
 * client had 1.3 MiB, and a kill -9 cut it 41 KiB short). So the proof is the client's next move
 * on the connection: another request, or a close in order after reading; a reset says it did not
 * read it all. The server closing an idle keep-alive connection itself (after its keep-alive
 * timeout) counts as delivered: the process lived on and closed the connection in order.
 */
export function clientHasWhole(socket: Socket | null): Promise<boolean> {
  // The socket is taken before the answer ends: Node detaches it from the response once finished.
  if (!socket || socket.destroyed) return Promise.resolve(Boolean(socket) && !socket?.errored);
  return new Promise((resolve) => {
    const settle = (whole: boolean) => {
      socket.off('data', onData);
      socket.off('close', onClose);
      resolve(whole);
    };
    const onData = () => settle(true);
    const onClose = (hadError: boolean) => settle(!hadError);
    socket.on('data', onData);
    socket.on('close', onClose);
  });
}

/**
 * True once everything written was handed to the client's connection, false when the client
 * went away first. (Handed to the kernel is as close to "received" as a server can see.) Node
 * also says 'finish' when the connection was reset under a pending write, so the socket's own
 * state decides.
 */
export function sentWhole(res: ServerResponse): Promise<boolean> {
  const socket = res.socket;
  if (!socket || socket.destroyed) return Promise.resolve(false);
  if (res.writableFinished) return Promise.resolve(true);
  return new Promise((resolve) => {
    const finish = () => settle(!socket.destroyed);
    const close = () => settle(res.writableFinished && !socket.destroyed);
    const settle = (whole: boolean) => {
      res.off('finish', finish);
      res.off('close', close);
      resolve(whole);
    };
    res.on('finish', finish);
    res.on('close', close);
  });
}

/**
 * The large result's Location, signed afresh (signed URLs expire: the one handed out now must be
 * valid from now on). Only a large result (a final with a manifest) points at the gateway's
 * storage; a container's own 302 keeps its Location.
 */
export function locationFor(
  ctx: GatewayContext,
  requestId: string,
  final: { status: number; headers: HeaderList; manifest?: unknown },
): HeaderList {
  if (final.status !== 302 || !final.manifest) return final.headers;
  const url = ctx.signer.url({ method: 'GET', kind: 'results', id: requestId }, ctx.config.urlTtlMs);
  return final.headers.map(([name, value]) => (name.toLowerCase() === 'location' ? [name, url] : [name, value]));
}
