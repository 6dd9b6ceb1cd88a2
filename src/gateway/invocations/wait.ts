import type { ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../shared/log.js';
import { answerProblem, answerProgress, answerStillRunning } from './answers.js';
import { cancelRequest } from './cancel.js';
import type { GatewayContext } from '../context.js';
import { deliverResult, type Outcome, type Result } from './deliver.js';
import type { PendingRequest } from './requests.js';
import { ResultAssembler, ResultAssemblyError, type ResultEvent } from './result-assembler.js';
import { ResponseReader } from './response-reader.js';
import type { QueuedRecord } from './queued-record.js';

/** NVCF's wait for a worker beyond the poll window before it answers 504. */
const NO_WORKER_GRACE_MS = 2_000;
/** How long a window's end waits on NATS (queue state, the record's touch) before answering anyway. */
const NATS_PATIENCE_MS = 1_000;

type Ending = 'window' | 'no-worker' | 'client-gone';
/** What the call that queued a request brings: the reader it made before the publish, and the record not yet written. */
type Queued = { reader: ResponseReader; record: QueuedRecord };
type Progress = Extract<ResultEvent, { type: 'progress' }> & { seq: number };
type News =
  | { kind: 'result'; result: Result }
  | { kind: 'progress'; progress: Progress }
  | { kind: 'unreadable'; error: Error }
  | { kind: 'ended'; ending: Ending };

/**
 * One client call (the pexec POST or a status GET) waiting on a request. It answers with the
 * first of: the result (a final, or the head of a stream), progress newer than any this request's
 * callers were shown (a 202 at once), a message it cannot read (a 502 that ends the request), or
 * the end of its window (a 202 with the latest progress, or 504 when no worker took the request).
 */
export async function answerWhenReady(
  ctx: GatewayContext,
  record: PendingRequest,
  pollSeconds: number,
  res: ServerResponse,
  queued?: Queued,
): Promise<void> {
  const call = new WaitingCall(ctx, record, pollSeconds, res, queued);
  try {
    await call.answer();
  } finally {
    call.close();
  }
}

class WaitingCall {
  private readonly stop = new AbortController();
  private ending: Ending | undefined;
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly reader: ResponseReader;
  private readonly assembler = new ResultAssembler();
  private latest: Progress | undefined;
  private readonly log: Logger;
  private readonly onShutdown = () => this.end('window');
  private readonly onClose = () => !this.res.writableFinished && this.end('client-gone');

  constructor(
    private readonly ctx: GatewayContext,
    private readonly record: PendingRequest,
    private readonly pollSeconds: number,
    private readonly res: ServerResponse,
    /** Set for the call that queued the request (deliver.ts), with the reader it made before the publish. */
    private readonly queued: Queued | undefined,
  ) {
    this.reader = queued?.reader ?? new ResponseReader(ctx, record);
    this.log = ctx.log.child({ requestId: record.requestId });
    this.timers.push(setTimeout(() => void this.checkQueue(false), pollSeconds * 1000));
    // A stopping gateway ends the window at once: the 202 carries NVCF-REQID, so the caller polls again.
    if (ctx.shutdown.aborted) queueMicrotask(this.onShutdown);
    else ctx.shutdown.addEventListener('abort', this.onShutdown, { once: true });
    res.on('close', this.onClose);
    ctx.waiting.set(record.requestId, (ctx.waiting.get(record.requestId) ?? 0) + 1);
  }

  async answer(): Promise<void> {
    const news = await this.waitForNews();
    this.timers.forEach(clearTimeout);
    const { requestId } = this.record;
    switch (news.kind) {
      case 'result':
        return this.finish(
          await deliverResult(this.ctx, this.record, this.res, news.result, this.readOn, this.queued?.record),
        );
      case 'unreadable':
        return this.finish(await this.unreadable(news.error));
      case 'progress':
        await this.queued?.record.beforeHandingOutId();
        await this.touch(news.progress.seq);
        answerProgress(this.res, requestId, news.progress);
        this.log.debug({ percentComplete: news.progress.percentComplete }, 'answered 202: progress');
        return;
      case 'ended':
        return this.ended(news.ending);
    }
  }

  /** Reads what the stream holds, then waits for more, until something is worth an answer. */
  private async waitForNews(): Promise<News> {
    let failing = false;
    for (;;) {
      try {
        const news = await this.readAvailable();
        if (news) return news;
        failing = false;
      } catch (err) {
        // NATS away: nothing is known to have failed, so keep the caller until its window ends.
        if (!failing) this.log.warn({ err: (err as Error).message }, 'reading the responses failed; retrying');
        failing = true;
      }
      const shown = this.record.progressSeq ?? 0;
      if (this.latest && this.latest.seq > shown) return { kind: 'progress', progress: this.latest };
      if (this.ending) return { kind: 'ended', ending: this.ending };
      if (failing) await sleep(NATS_PATIENCE_MS / 2, undefined, { signal: this.stop.signal }).catch(() => undefined);
      else await this.reader.changed(this.stop.signal);
    }
  }

  /** Every message stored so far, through the assembler; stops at the result or a message that cannot be read. */
  private async readAvailable(): Promise<News | undefined> {
    for (let stored = await this.reader.next(); stored; stored = await this.reader.next()) {
      if (stored.error) return { kind: 'unreadable', error: stored.error };
      let events: ResultEvent[];
      try {
        events = this.assembler.push(stored.frame);
      } catch (err) {
        if (err instanceof ResultAssemblyError) return { kind: 'unreadable', error: err };
        throw err;
      }
      for (const event of events) {
        if (event.type === 'progress') this.latest = { ...event, seq: stored.seq };
        else if (event.type === 'head' || event.type === 'final') return { kind: 'result', result: event };
      }
    }
    return undefined;
  }

  /**
   * The rest of a streamed response, one message at a time and only when the client has taken
   * the last one: the gateway holds one message per stream, whatever the client's pace.
   */
  private readonly readOn = async (gone: AbortSignal): Promise<ResultEvent[] | Error> => {
    for (;;) {
      if (gone.aborted) return [];
      try {
        const stored = await this.reader.next();
        if (stored?.error) return stored.error;
        if (stored) return this.assembler.push(stored.frame);
        await this.reader.changed(gone);
      } catch (err) {
        if (err instanceof ResultAssemblyError) return err;
        await sleep(NATS_PATIENCE_MS / 2, undefined, { signal: gone }).catch(() => undefined);
      }
    }
  };

  private async unreadable(error: Error): Promise<Outcome> {
    const { requestId } = this.record;
    this.log.error({ err: error.message }, 'a response message cannot be read; ending the request with 502');
    if (this.res.headersSent) return 'cut';
    await this.queued?.record.beforeHandingOutId();
    const lease = await this.ctx.requests.reserve(requestId, 5_000);
    if (lease.outcome !== 'reserved') {
      answerStillRunning(this.res, requestId);
      return 'kept';
    }
    answerProblem(
      this.res,
      requestId,
      502,
      `the gateway could not read a response message of request ${requestId}: ${error.message}`,
    );
    await lease.lease.commit().catch(() => undefined);
    return 'cut';
  }

  /** After a result: a delivered one's messages are dropped, a cut one's request is stopped. */
  private async finish(outcome: Outcome): Promise<void> {
    if (outcome === 'delivered') {
      // Nobody can ask for it again: its messages only take room in the stream now.
      await this.reader
        .dropRead()
        .catch((err: Error) => this.log.debug({ err: err.message }, 'could not drop delivered responses'));
    } else if (outcome === 'cut') {
      await cancelRequest(this.ctx, this.record, 'the answer was cut short');
    }
  }

  private async ended(ending: Ending): Promise<void> {
    const { requestId } = this.record;
    if (ending === 'client-gone') {
      await cancelRequest(this.ctx, this.record, 'the client went away before the result');
      return;
    }
    if (ending === 'no-worker') {
      await cancelRequest(this.ctx, this.record, 'no worker took the request within the poll window');
      answerProblem(
        this.res,
        requestId,
        504,
        `no worker took the request within its ${this.pollSeconds}s poll window (+${NO_WORKER_GRACE_MS / 1000}s); it was cancelled`,
      );
      this.log.info({ pollSeconds: this.pollSeconds }, 'answered 504: no worker');
      return;
    }
    await this.queued?.record.beforeHandingOutId();
    await this.touch(this.latest?.seq);
    if (this.latest) answerProgress(this.res, requestId, this.latest);
    else answerStillRunning(this.res, requestId);
    this.log.debug({ percentComplete: this.latest?.percentComplete }, 'answered 202: still running');
  }

  /** Records the call's end on the request record, without keeping the caller past NATS_PATIENCE_MS. */
  private async touch(progressSeq: number | undefined): Promise<void> {
    const touched = this.ctx.requests
      .touch(this.record.requestId, this.pollSeconds, progressSeq)
      .catch((err: Error) => this.log.warn({ err: err.message }, 'could not note the poll on the request record'));
    await Promise.race([touched, sleep(NATS_PATIENCE_MS)]);
  }

  private end(why: Ending): void {
    if (this.ending) return;
    this.ending = why;
    this.stop.abort();
  }

  private async checkQueue(final: boolean): Promise<void> {
    const { functionVersionId, requestId } = this.record;
    const where = await Promise.race([
      this.ctx.queues.stateOf(functionVersionId, requestId),
      sleep(NATS_PATIENCE_MS, { state: 'unknown' as const }),
    ]).catch(() => ({ state: 'unknown' as const }));
    if (where.state !== 'waiting') return this.end('window');
    if (final) return this.end('no-worker');
    this.timers.push(setTimeout(() => void this.checkQueue(true), NO_WORKER_GRACE_MS));
  }

  close(): void {
    this.timers.forEach(clearTimeout);
    this.reader.close();
    this.queued?.record.close();
    this.ctx.shutdown.removeEventListener('abort', this.onShutdown);
    this.res.off('close', this.onClose);
    const left = (this.ctx.waiting.get(this.record.requestId) ?? 1) - 1;
    if (left > 0) this.ctx.waiting.set(this.record.requestId, left);
    else this.ctx.waiting.delete(this.record.requestId);
  }
}
