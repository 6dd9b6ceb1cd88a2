import type { JetStreamManager, NatsConnection, StoredMsg, Subscription } from 'nats';
import { streams, subjects, type ResponseMeta } from '../shared/protocol.js';
import { decodeResponse, type Frame } from '../shared/frame-codec.js';
import { isNatsNotFound } from '../shared/nats-errors.js';

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

/**
 * Reads one request's responses from NVCF_RS in stream order with Direct Get, one message at a
 * time and only when asked: nothing is created on the server (no consumer), and a caller that
 * reads slowly holds one message, not a backlog. A core subscription on the request's subjects
 * only says when to look again; the stream stays the one source of what was published, so a
 * message the subscription misses (a reconnect) is still read.
 */
export class ResponseReader {
  private nextSeq = 1;
  private heard = false;
  private wake: (() => void) | undefined;
  private readonly subscription: Subscription;
  private readonly filter: string;
  /**
   * Set for a reader made before its request was published: until it hears of a message or
   * looks again anyway, the stream cannot hold one, and a read would be a wasted round trip.
   */
  private quiet: boolean;

  /** `beforePublish`: the request is published only after this returns (see `quiet`). */
  constructor(
    nc: NatsConnection,
    private readonly jsm: JetStreamManager,
    replyTo: string,
    beforePublish = false,
  ) {
    this.filter = subjects.responsesOf(replyTo);
    this.quiet = beforePublish;
    // nats.js sends the SUB at once (or first thing after a reconnect), ahead of the publish on
    // the same connection, so the server knows of it before any worker can answer.
    this.subscription = nc.subscribe(this.filter, {
      callback: () => {
        this.heard = true;
        this.quiet = false;
        this.wake?.();
      },
    });
  }

  /** The next stored message after the last one read, or undefined when there is none yet. NATS errors throw. */
  async next(): Promise<StoredResponse | undefined> {
    if (this.quiet) return undefined;
    let message;
    try {
      message = await (this.jsm as WithDirectGet).direct.getMessage(streams.results, {
        next_by_subj: this.filter,
        seq: this.nextSeq,
      });
    } catch (err) {
      if (isNatsNotFound(err)) return undefined;
      throw err;
    }
    this.nextSeq = message.seq + 1;
    const where = { seq: message.seq, subject: message.subject };
    try {
      return { ...where, frame: decodeResponse(message.data) };
    } catch (err) {
      return { ...where, error: err as Error };
    }
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
