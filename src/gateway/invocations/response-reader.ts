import type { JetStreamManager, Msg, StoredMsg, Subscription } from 'nats';
import { streams, subjects, type ResponseMeta } from '../../shared/protocol.js';
import { decodeResponse, type Frame } from '../../shared/frame-codec.js';
import { isNatsNotFound } from '../../shared/nats-errors.js';
import type { GatewayContext } from '../context.js';
import type { PendingRequest } from './requests.js';
import type { ResultsFloor } from './results-floor.js';

/** A stored response message: decoded, or the reason it could not be. */
export type StoredResponse = { seq: number; subject: string } & (
  { frame: Frame<ResponseMeta>; error?: undefined } | { frame?: undefined; error: Error }
);

/** nats.js has Direct Get on its manager but leaves it out of the interface it exports. */
type WithDirectGet = JetStreamManager & {
  direct: { getMessage(stream: string, query: { next_by_subj: string; seq: number }): Promise<StoredMsg> };
};

/** How long a reader waits for a wake-up before it looks at the stream anyway (a publish heard late or lost). */
const LOOK_AGAIN_MS = 1_000;
/** A result of more messages than this (a long stream) is dropped with one purge instead, see `dropRead`. */
const MAX_KEPT_SEQS = 1_024;
const DELETES_AT_ONCE = 32;

/**
 * Reads one request's responses from NVCF_RS in stream order with Direct Get, one message at a
 * time and only when asked: nothing is created on the server (no consumer), and a caller that
 * reads slowly holds one message, not a backlog. A core subscription on the request's subjects
 * only says when to look again; the stream stays the one source of what was published, so a
 * message the subscription misses (a reconnect) is still read.
 */
export class ResponseReader {
  private nextSeq: number;
  private readonly firstSeq: number;
  private heard = false;
  private wake: (() => void) | undefined;
  private readonly subscription: Subscription;
  private readonly filter: string;
  private readonly jsm: JetStreamManager;
  private readonly floor: ResultsFloor;
  /**
   * Set for a reader made before its request was published: until it hears of a message or
   * looks again anyway, the stream cannot hold one, and a read would be a wasted round trip.
   */
  private quiet: boolean;
  /** When a message was first heard that no read has found yet; see `next`. */
  private unfoundSince: number | undefined;
  private searchedFromStart = false;
  /** Sequences of the messages read, for `dropRead`; undefined once there were too many to keep. */
  private readSeqs: number[] | undefined = [];
  /** A whole final heard before anything was read (see `heard`), handed out by the next `next`. */
  private early: StoredResponse | undefined;
  /** The subject of the early final handed out, which `dropRead` removes by subject (it has no sequence). */
  private earlySubject: string | undefined;

  /**
   * Reads from the request's `resultsFrom` (results-floor.ts), or from the start for a record
   * without one. `beforePublish`: the request is published only after this returns (`quiet`).
   */
  constructor(
    ctx: Pick<GatewayContext, 'nc' | 'jsm' | 'resultsFloor'>,
    request: Pick<PendingRequest, 'replyTo' | 'resultsFrom'>,
    beforePublish = false,
  ) {
    this.jsm = ctx.jsm;
    this.floor = ctx.resultsFloor;
    this.filter = subjects.responsesOf(request.replyTo);
    this.firstSeq = this.nextSeq = (request.resultsFrom ?? 0) + 1;
    this.quiet = beforePublish;
    // nats.js sends the SUB at once (or first thing after a reconnect), ahead of the publish on
    // the same connection, so the server knows of it before any worker can answer.
    this.subscription = ctx.nc.subscribe(this.filter, {
      callback: (_err, msg) => {
        if (this.quiet) this.early = wholeFinal(msg);
        this.heard = true;
        this.quiet = false;
        this.unfoundSince ??= Date.now();
        this.wake?.();
      },
    });
  }

  /** The next stored message after the last one read, or undefined when there is none yet. NATS errors throw. */
  async next(): Promise<StoredResponse | undefined> {
    if (this.quiet) return undefined;
    if (this.early) {
      const early = this.early;
      this.early = undefined;
      this.earlySubject = early.subject;
      return early;
    }
    let message = await this.read(this.nextSeq);
    // Nothing read yet, and a message heard of long ago still not found from the floor: the
    // stream may have been made again, its sequences started over below it. One search from the
    // start settles it.
    if (
      !message &&
      this.nextSeq === this.firstSeq &&
      this.firstSeq > 1 &&
      !this.searchedFromStart &&
      Date.now() - (this.unfoundSince ?? Infinity) > LOOK_AGAIN_MS
    ) {
      this.searchedFromStart = true;
      message = await this.read(1);
    }
    if (!message) return undefined;
    this.unfoundSince = undefined;
    this.nextSeq = message.seq + 1;
    this.floor.saw(message.seq);
    if (this.readSeqs && this.readSeqs.push(message.seq) > MAX_KEPT_SEQS) this.readSeqs = undefined;
    const where = { seq: message.seq, subject: message.subject };
    try {
      return { ...where, frame: decodeResponse(message.data) };
    } catch (err) {
      return { ...where, error: err as Error };
    }
  }

  private async read(seq: number): Promise<StoredMsg | undefined> {
    try {
      return await (this.jsm as WithDirectGet).direct.getMessage(streams.results, { next_by_subj: this.filter, seq });
    } catch (err) {
      if (isNatsNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Deletes from NVCF_RS the messages this reader read (a delivered result's, which nobody can
   * ask for again), one by one by sequence. A purge filtered by the request's subjects would do
   * it in one call, but the server walks the whole stream for a wildcard filter (70 ms at 100,000
   * messages, holding up every other call); it is left for results of more than MAX_KEPT_SEQS
   * messages.
   */
  async dropRead(): Promise<void> {
    if (this.earlySubject) {
      const subject = this.earlySubject;
      this.earlySubject = undefined;
      await this.jsm.streams.purge(streams.results, { filter: subject });
    }
    if (this.readSeqs) {
      const seqs = this.readSeqs;
      this.readSeqs = [];
      for (let i = 0; i < seqs.length; i += DELETES_AT_ONCE)
        await Promise.all(
          seqs.slice(i, i + DELETES_AT_ONCE).map((seq) => this.jsm.streams.deleteMessage(streams.results, seq, false)),
        );
    } else await this.jsm.streams.purge(streams.results, { filter: this.filter });
  }

  /** Resolves when something new may have been stored, or after a while, or when `signal` aborts. */
  async changed(signal: AbortSignal): Promise<void> {
    if (!this.heard && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        const timer = setTimeout(() => {
          // A wake-up lost (a cluster route slower than the stream): read the stream anyway.
          this.quiet = false;
          done();
        }, LOOK_AGAIN_MS);
        signal.addEventListener('abort', done, { once: true });
        this.wake = done;
      });
    }
    this.heard = false;
  }

  close(): void {
    this.subscription.unsubscribe();
  }
}

/**
 * The first message a request's subscription hears, when it is its whole answer: a final of one
 * message (not a stream's end, no chunks). The call that queued the request takes it from the
 * subscription instead of reading it back from the stream, a round trip saved on every quick call.
 * It may be heard a moment before the stream has stored it; the worker acks its work only once
 * the stream has, and a result that does not reach the client whole is read from the stream by
 * the next poll as usual. Anything else (progress first, a stream, a chunked body) is read from
 * the stream, which stays the record of what a request answered.
 */
function wholeFinal(msg: Msg): StoredResponse | undefined {
  if (!msg.subject.endsWith('.final')) return undefined;
  try {
    const frame = decodeResponse(msg.data);
    if (frame.meta.kind !== 'final' || frame.meta.streamed || frame.meta.chunks !== 0) return undefined;
    return { seq: 0, subject: msg.subject, frame };
  } catch {
    return undefined; // read from the stream, where an unreadable message is reported as such
  }
}
