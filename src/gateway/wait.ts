import type { ServerResponse } from 'node:http';
import type { HeaderList } from '../shared/protocol.js';
import { ResultAssembler, type ResultEvent } from './result-assembler.js';
import { cancelRequest, type GatewayContext } from './context.js';
import type { LiveRequest } from './live.js';
import { sendProblem } from './http.js';
import { ClaimNotTried, type PendingRequest } from './requests.js';

/** NVCF's wait for a worker beyond the poll window before it answers 504. */
export const NO_WORKER_GRACE_MS = 2_000;

export function nvcfStatus(status: number): string {
  if (status === 202) return 'in-progress';
  return status >= 200 && status < 400 ? 'fulfilled' : 'errored';
}

type Ending = 'window' | 'no-worker' | 'client-gone';

/**
 * One client call (the pexec POST or a status GET) waiting on a request: it answers with the
 * final response, streams a pass-through response as it comes, or, when the poll window ends
 * first, answers 202 with the latest progress. The responses are read from the start of the
 * request's subjects in NVCF_RS, so any call on any gateway sees the same history; the result
 * goes to whichever call claims the request record first.
 */
export async function answerWhenReady(
  ctx: GatewayContext,
  record: PendingRequest,
  pollSeconds: number,
  res: ServerResponse,
  live?: LiveRequest,
): Promise<void> {
  const { requestId } = record;
  const log = ctx.log.child({ requestId });
  const stop = new AbortController();
  let ending: Ending | undefined;
  let settled = false;
  const end = (why: Ending) => {
    // Once a result is being written only the client leaving can stop it.
    if (ending || (settled && why !== 'client-gone')) return;
    ending = why;
    stop.abort();
  };
  const timers: NodeJS.Timeout[] = [];
  const checkQueue = async (final: boolean) => {
    if (settled) return;
    const where = await ctx.queues
      .stateOf(record.functionVersionId, requestId)
      .catch(() => ({ state: 'taken' as const }));
    if (where.state !== 'waiting') return end('window');
    if (final) return end('no-worker');
    timers.push(setTimeout(() => void checkQueue(true), NO_WORKER_GRACE_MS));
  };
  timers.push(setTimeout(() => void checkQueue(false), pollSeconds * 1000));
  // A stopping gateway ends the window at once: the 202 carries NVCF-REQID, so the caller polls again.
  const onShutdown = () => end('window');
  if (ctx.shutdown.aborted) queueMicrotask(onShutdown);
  else ctx.shutdown.addEventListener('abort', onShutdown, { once: true });
  const onClose = () => !res.writableFinished && end('client-gone');
  res.on('close', onClose);
  ctx.waiting.set(requestId, (ctx.waiting.get(requestId) ?? 0) + 1);

  const assembler = new ResultAssembler();
  let latest: Extract<ResultEvent, { type: 'progress' }> | undefined;
  let streaming = false;
  try {
    // The call that queued the request listens live; a poll reads what the stream has kept.
    const frames = live
      ? live.frames(stop.signal)
      : ctx.client.responses(
          record.replyTo,
          stop.signal,
          (err) => log.warn({ err: err.message }, 'skipping a response message this gateway cannot read'),
          true,
        );
    for await (const frame of frames) {
      for (const event of assembler.push(frame)) {
        if (event.type === 'progress') latest = event;
        else if (event.type === 'head' || event.type === 'final') {
          if (!streaming) {
            settled = true;
            timers.forEach(clearTimeout);
            let claimed: boolean;
            try {
              claimed = await ctx.requests.claim(requestId);
            } catch (err) {
              if (!(err instanceof ClaimNotTried)) throw err;
              // Nothing was taken: the result stays in NVCF_RS for the caller's next poll.
              log.warn(
                { err: err.message },
                'the result is here but NATS is out of reach; answering 202 so the caller polls again',
              );
              return answerStillRunning(res, requestId);
            }
            if (!claimed) {
              // Another call took the result between our reads: this one ends as a late poll would.
              sendProblem(
                res,
                404,
                `request ${requestId} was already answered`,
                { 'NVCF-REQID': requestId, 'NVCF-STATUS': 'errored' },
                requestId,
              );
              return;
            }
          }
          if (event.type === 'head') {
            streaming = true;
            writeHead(res, requestId, event.status, event.headers);
            res.flushHeaders();
            continue;
          }
          if (streaming) {
            if (event.error) {
              log.warn({ err: event.error }, 'the streamed response broke off; cutting the client connection short');
              res.destroy();
            } else res.end();
          } else {
            // Signed URLs expire: the Location handed out now must be valid from now on.
            const headers = event.status === 302 ? freshLocation(ctx, requestId, event.headers) : event.headers;
            writeHead(res, requestId, event.status, headers, event.body.length);
            res.end(event.body);
          }
          log.info({ status: event.status, streamed: streaming }, 'result delivered');
          return;
        } else if (event.type === 'data' && !res.write(event.bytes)) await drained(res);
      }
    }
  } catch (err) {
    if (!settled && !res.headersSent) {
      // NATS went away mid-wait: nothing is known to have failed, so the honest answer is "still running".
      log.warn(
        { err: (err as Error).message },
        'reading the responses failed; answering 202 so the caller polls again',
      );
      return answerStillRunning(res, requestId);
    }
    log.error({ err: (err as Error).message }, 'reading the responses failed');
    if (!res.headersSent)
      sendProblem(
        res,
        500,
        `the gateway could not read the result: ${(err as Error).message}`,
        { 'NVCF-REQID': requestId, 'NVCF-STATUS': 'errored' },
        requestId,
      );
    else res.destroy();
    return;
  } finally {
    timers.forEach(clearTimeout);
    ctx.shutdown.removeEventListener('abort', onShutdown);
    res.off('close', onClose);
    const left = (ctx.waiting.get(requestId) ?? 1) - 1;
    if (left > 0) ctx.waiting.set(requestId, left);
    else ctx.waiting.delete(requestId);
  }

  if (streaming || ending === 'client-gone') {
    await cancelRequest(
      ctx,
      record,
      streaming ? 'the client closed the stream' : 'the client went away before the result',
    );
    return;
  }
  if (ending === 'no-worker') {
    await cancelRequest(ctx, record, 'no worker took the request within the poll window');
    sendProblem(
      res,
      504,
      `no worker took the request within its ${pollSeconds}s poll window (+${NO_WORKER_GRACE_MS / 1000}s); it was cancelled`,
      { 'NVCF-REQID': requestId, 'NVCF-STATUS': 'errored' },
      requestId,
    );
    log.info({ pollSeconds }, 'answered 504: no worker');
    return;
  }
  await ctx.requests.touch(requestId, pollSeconds);
  const headers: Record<string, string> = { 'NVCF-REQID': requestId, 'NVCF-STATUS': 'in-progress' };
  if (latest) {
    headers['NVCF-PERCENT-COMPLETE'] = String(latest.percentComplete);
    headers['content-type'] = 'application/json';
  }
  const body = latest ? Buffer.from(latest.body) : Buffer.alloc(0);
  res.writeHead(202, { ...headers, 'content-length': body.length });
  res.end(body);
  log.debug({ percentComplete: latest?.percentComplete }, 'answered 202: still running');
}

/** A 202 without progress: the caller keeps its request id and polls again. */
export function answerStillRunning(res: ServerResponse, requestId: string): void {
  res.writeHead(202, { 'NVCF-REQID': requestId, 'NVCF-STATUS': 'in-progress', 'content-length': 0 });
  res.end();
}

function writeHead(res: ServerResponse, requestId: string, status: number, headers: HeaderList, length?: number): void {
  for (const [name, value] of headers) {
    // The gateway's CORS answer (cors.ts) wins: a second Allow-Origin makes browsers refuse both.
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
function drained(res: ServerResponse): Promise<void> {
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

function freshLocation(ctx: GatewayContext, requestId: string, headers: HeaderList): HeaderList {
  const url = ctx.signer.url({ method: 'GET', kind: 'results', id: requestId }, ctx.config.urlTtlMs);
  return headers.map(([name, value]) => (name.toLowerCase() === 'location' ? [name, url] : [name, value]));
}
