import type { NatsConnection, Subscription } from 'nats';
import { STREAM_AHEAD_BYTES, subjects } from '../../shared/protocol.js';

/**
 * End-to-end backpressure for a streamed response. The gateway reports how many body bytes it has
 * written to its client; the worker publishes at most `aheadBytes` beyond that and otherwise stops
 * reading the container's body, so a client reading slowly slows the container down instead of
 * filling NVCF_RS with the rest of the stream. Reports are cumulative and repeated by the gateway,
 * so a lost one costs a second, never a stall. Anyone able to publish a report can only lift the
 * bound for that one request, never lose or alter a byte.
 */
export class StreamCredit {
  private published = 0;
  private read = 0;
  private wake: (() => void) | undefined;
  private readonly sub: Subscription;

  constructor(
    nc: NatsConnection,
    requestId: string,
    private readonly aheadBytes = STREAM_AHEAD_BYTES,
  ) {
    this.sub = nc.subscribe(subjects.streamRead(requestId), {
      callback: (_err, msg) => {
        const bytes = Number(new TextDecoder().decode(msg.data));
        if (!Number.isSafeInteger(bytes) || bytes <= this.read) return;
        this.read = bytes;
        this.wake?.();
      },
    });
  }

  /** Counts bytes as published, once they are handed to the publisher. */
  sent(bytes: number): void {
    this.published += bytes;
  }

  /** Resolves once the client is close enough behind; rejects with the signal's reason if it aborts first. */
  async room(signal: AbortSignal): Promise<void> {
    while (this.published - this.read > this.aheadBytes) {
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        const done = () => {
          signal.removeEventListener('abort', done);
          this.wake = undefined;
          resolve();
        };
        this.wake = done;
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }

  close(): void {
    this.sub.unsubscribe();
    this.wake?.();
  }
}
