import type { ServerResponse } from 'node:http';
import {
  RECEIPT_PROOF_BYTES,
  answerProblem,
  answerStillRunning,
  clientHasWhole,
  drained,
  locationFor,
  sentWhole,
  writeHead,
} from './answers.js';
import type { GatewayContext } from '../context.js';
import { STREAM_READ_REPORT_MS, subjects } from '../../shared/protocol.js';
import type { Lease, PendingRequest } from './requests.js';
import type { ResultEvent } from './result-assembler.js';
import type { QueuedRecord } from './queued-record.js';

/** Bytes of a stream written between two reports of the client's position to the worker. */
const STREAM_READ_STEP = 256 * 1024;

/** How long one call may hold a result while it writes it; renewed while the writing goes on. */
const DELIVERY_LEASE_MS = 30_000;

/**
 * What became of a result: `delivered` whole to the client (the record is gone, later polls
 * 404); `kept` for the next poll (the client went away mid-body, another call holds it, or NATS
 * was away); `cut` (a stream broke off, or the client left one): the request is over.
 */
export type Outcome = 'delivered' | 'kept' | 'cut';

/** What ends a wait with a result: a buffered final, or the head of a stream. */
export type Result = Extract<ResultEvent, { type: 'head' | 'final' }>;

/** Reads on a stream: the next events, or an error that ends it. Returns [] once `gone` aborts. */
export type ReadOn = (gone: AbortSignal) => Promise<ResultEvent[] | Error>;

/**
 * Results this gateway has written but not yet seen received (see clientHasWhole), with the
 * commit or release that follows. A poll for one of them waits for that first: it may be the very
 * request that proves the client has the answer, and it should then find it delivered.
 */
const settling = new Map<string, Promise<unknown>>();

/**
 * Hands a result to this call's client, at most once across every call and gateway. `queued`:
 * this is the call that queued the request, the only one that knows its id until it answers, so
 * a small final (complete once sent, see RECEIPT_PROOF_BYTES) needs no lease against other calls,
 * nor a record: no round trip to NATS between the answer and its client. Anything else is handed
 * out under a lease on the record, which is written first if it is not yet.
 */
export async function deliverResult(
  ctx: GatewayContext,
  record: PendingRequest,
  res: ServerResponse,
  result: Result,
  readOn: ReadOn,
  queued?: QueuedRecord,
): Promise<Outcome> {
  if (queued && result.type === 'final' && result.body.length < RECEIPT_PROOF_BYTES)
    return deliverFinal(ctx, record, res, result, { queued });
  if (queued && !(await queued.beforeHandingOutId())) {
    ctx.log.warn(
      { requestId: record.requestId },
      'the result is here but NATS does not take its record; answering 202 so the caller polls again',
    );
    answerStillRunning(res, record.requestId);
    return 'kept';
  }
  const lease = await reserve(ctx, record.requestId, res);
  if (!lease) return 'kept';
  return result.type === 'final'
    ? deliverFinal(ctx, record, res, result, { lease })
    : deliverStream(ctx, record, res, result, lease, readOn);
}

/** The lease on the result, or undefined when this call answered otherwise (404, or 202: poll again). */
async function reserve(ctx: GatewayContext, requestId: string, res: ServerResponse): Promise<Lease | undefined> {
  await settling.get(requestId);
  const reservation = await ctx.requests.reserve(requestId, DELIVERY_LEASE_MS);
  switch (reservation.outcome) {
    case 'reserved':
      return reservation.lease;
    case 'gone':
      answerProblem(res, requestId, 404, `request ${requestId} was already answered`);
      return undefined;
    case 'busy':
      // Another call is writing it now: it is delivered when that ends, or claimable again if it fails.
      answerStillRunning(res, requestId);
      return undefined;
    case 'unknown':
      ctx.log.warn(
        { requestId, err: reservation.error.message },
        'the result is here but NATS is out of reach; answering 202 so the caller polls again',
      );
      answerStillRunning(res, requestId);
      return undefined;
  }
}

async function deliverFinal(
  ctx: GatewayContext,
  record: PendingRequest,
  res: ServerResponse,
  final: Extract<ResultEvent, { type: 'final' }>,
  /** The lease it is handed out under, or the record of the call that queued it (see deliverResult). */
  hold: { lease: Lease } | { queued: QueuedRecord },
): Promise<Outcome> {
  const { requestId } = record;
  writeHead(res, requestId, final.status, locationFor(ctx, requestId, final), final.body.length);
  const socket = res.socket;
  res.end(final.body);
  const settled = (async (): Promise<Outcome> => {
    const whole = (await sentWhole(res)) && (final.body.length < RECEIPT_PROOF_BYTES || (await clientHasWhole(socket)));
    if (!whole) {
      // The client may hold the id from the answer's head: its next poll must find the record.
      await ('lease' in hold ? hold.lease.release() : hold.queued.beforeHandingOutId());
      ctx.log.info({ requestId }, 'the client went away mid-body; the result stays for its next poll');
      return 'kept';
    }
    await commit(ctx, requestId, 'lease' in hold ? () => hold.lease.commit() : () => hold.queued.discard());
    ctx.log.info({ requestId, status: final.status }, 'result delivered');
    return 'delivered';
  })();
  settling.set(requestId, settled);
  try {
    return await settled;
  } finally {
    settling.delete(requestId);
  }
}

async function deliverStream(
  ctx: GatewayContext,
  record: PendingRequest,
  res: ServerResponse,
  head: Extract<ResultEvent, { type: 'head' }>,
  lease: Lease,
  readOn: ReadOn,
): Promise<Outcome> {
  const { requestId } = record;
  const gone = new AbortController();
  const onClose = () => !res.writableFinished && gone.abort();
  res.on('close', onClose);
  const position = new ReadPosition(ctx, requestId);
  try {
    writeHead(res, requestId, head.status, head.headers);
    res.flushHeaders();
    for (;;) {
      const events = await readOn(gone.signal);
      if (events instanceof Error) {
        ctx.log.error({ requestId, err: events.message }, 'a streamed response cannot be read; cutting it short');
        res.destroy();
        break;
      }
      if (gone.signal.aborted) break;
      let over = false;
      for (const event of events) {
        if (event.type === 'data') {
          if (!res.write(event.bytes)) await drained(res);
          position.wrote(event.bytes.length);
        }
        if (event.type !== 'final') continue;
        if (event.error) {
          ctx.log.warn({ requestId, err: event.error }, 'the streamed response broke off; cutting the client short');
          res.destroy();
          over = true;
          break;
        }
        res.end();
        over = true;
        if (!(await sentWhole(res))) break;
        await commit(ctx, requestId, () => lease.commit());
        ctx.log.info({ requestId, status: head.status, streamed: true }, 'result delivered');
        return 'delivered';
      }
      if (over || res.destroyed) break;
      position.report();
    }
  } finally {
    position.stop();
    res.off('close', onClose);
  }
  // Part of a stream went out: it cannot be handed to anyone again, so the request ends here.
  await lease.release();
  return 'cut';
}

/**
 * Tells the worker how much of a stream this gateway has written to its client, so it publishes
 * only so far ahead (STREAM_AHEAD_BYTES): after every STREAM_READ_STEP bytes, after each batch,
 * and again every STREAM_READ_REPORT_MS, since a core NATS report can be lost.
 */
class ReadPosition {
  private written = 0;
  private reported = 0;
  private readonly repeat: NodeJS.Timeout;

  constructor(
    private readonly ctx: GatewayContext,
    private readonly requestId: string,
  ) {
    this.repeat = setInterval(() => this.publish(), STREAM_READ_REPORT_MS);
  }

  wrote(bytes: number): void {
    this.written += bytes;
    if (this.written - this.reported >= STREAM_READ_STEP) this.report();
  }

  report(): void {
    if (this.written !== this.reported) this.publish();
  }

  stop(): void {
    clearInterval(this.repeat);
  }

  private publish(): void {
    try {
      this.ctx.nc.publish(subjects.streamRead(this.requestId), String(this.written));
      this.reported = this.written;
    } catch {
      // NATS is closing; the worker is stopped by the request's end anyway.
    }
  }
}

/** Ends a delivered result's record (the lease's, or the queuing call's): later polls get 404. */
async function commit(ctx: GatewayContext, requestId: string, end: () => Promise<void>): Promise<void> {
  await end().catch((err: Error) =>
    ctx.log.error(
      { requestId, err: err.message },
      'the result was delivered but its record could not be removed; a later poll may get it again',
    ),
  );
}
