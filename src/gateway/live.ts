import type { NatsConnection, Subscription } from 'nats';
import type { Logger } from '../shared/log.js';
import { decodeResponse, subjects, type Frame, type ResponseMeta } from '../shared/protocol.js';

/**
 * The fast path for a pexec call's own wait: JetStream publishes are also ordinary NATS
 * messages, so one core subscription on `nvcf.rs.<gatewayId>.>` hears every response of this
 * gateway's requests as it is stored, at no cost per call. A call that registers before its
 * invocation is published reads its responses from here instead of creating a consumer on the
 * results stream. Core delivery is best effort: if a message is lost (a reconnect), the call
 * ends its window with a 202 and the caller's poll reads the stream, which has everything.
 */
export class LiveResults {
  private readonly listeners = new Map<string, (frame: Frame<ResponseMeta>) => void>();
  private readonly subscription: Subscription;
  private readonly prefixLength: number;

  constructor(nc: NatsConnection, gatewayId: string, log: Logger) {
    const prefix = subjects.gatewayReplies(gatewayId);
    this.prefixLength = prefix.length;
    this.subscription = nc.subscribe(`${prefix}>`, {
      callback: (err, msg) => {
        if (err) return log.warn({ err: err.message }, 'live results subscription');
        const requestId = msg.subject.slice(this.prefixLength, msg.subject.indexOf('.', this.prefixLength));
        const listener = this.listeners.get(requestId);
        if (!listener) return;
        try {
          listener(decodeResponse(msg.data));
        } catch (decodeErr) {
          log.warn(
            { requestId, err: (decodeErr as Error).message },
            'skipping a response message this gateway cannot read',
          );
        }
      },
    });
  }

  /**
   * Starts buffering the responses of one request (call it before publishing the invocation);
   * `frames` then reads them until its signal aborts, and `close` stops listening.
   */
  listen(requestId: string): LiveRequest {
    const queue: Frame<ResponseMeta>[] = [];
    let wake: (() => void) | undefined;
    this.listeners.set(requestId, (frame) => {
      queue.push(frame);
      wake?.();
    });
    return {
      frames: async function* (signal: AbortSignal) {
        const stop = () => wake?.();
        signal.addEventListener('abort', stop, { once: true });
        try {
          while (!signal.aborted) {
            const frame = queue.shift();
            if (frame) yield frame;
            else await new Promise<void>((resolve) => (wake = resolve));
          }
        } finally {
          signal.removeEventListener('abort', stop);
        }
      },
      close: () => this.listeners.delete(requestId),
    };
  }

  close(): void {
    this.subscription.unsubscribe();
  }
}

export interface LiveRequest {
  frames(signal: AbortSignal): AsyncGenerator<Frame<ResponseMeta>>;
  close(): void;
}
