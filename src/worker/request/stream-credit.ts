import type { NatsConnection, Subscription } from 'nats';
import { SidecarError } from '../../shared/errors.js';
import { STREAM_AHEAD_BYTES, subjects } from '../../shared/protocol.js';

/**
 * End-to-end backpressure for a streamed response. The gateway reports how many body bytes it has
 * written to its client; the worker publishes at most `aheadBytes` beyond that and otherwise stops
 * reading the container's body, so a client reading slowly slows the container down instead of
 * filling NVCF_RS with the rest of the stream. Reports are cumulative and repeated by the gateway,
 * so a lost one costs a second, never a stall; and since a gateway delivering the stream repeats
 * them every second, a stream held at the bound with no report for `readerTimeoutMs` has nobody
 * reading it (its gateway died): it ends, instead of holding a request slot until the request is
 * cancelled. Anyone able to publish a report can only lift the bound for that one request, never
 * lose or alter a byte.
 */
export class StreamCredit {
  private published = 0;
  private read = 0;
  private wake: (() => void) | undefined;
  private readonly sub: Subscription;

  constructor(
    nc: NatsConnection,
    requestId: string,
    private readonly readerTimeoutMs: number,
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

  /**
   * Resolves once the client is close enough behind. Rejects with the signal's reason if it
   * aborts first, and with a RELAY_FAILED error when no report comes for `readerTimeoutMs`.
   */
  async room(signal: AbortSignal): Promise<void> {
    while (this.published - this.read > this.aheadBytes) {
      signal.throwIfAborted();
      const reported = await new Promise<boolean>((resolve) => {
        const done = (heard: boolean) => {
          clearTimeout(timer);
          signal.removeEventListener('abort', aborted);
          this.wake = undefined;
          resolve(heard);
        };
        const aborted = () => done(true);
        const timer = setTimeout(() => done(false), this.readerTimeoutMs);
        this.wake = () => done(true);
        signal.addEventListener('abort', aborted, { once: true });
      });
      if (!reported)
        throw new SidecarError(
          'RELAY_FAILED',
          `nobody has read the stream for ${Math.round(this.readerTimeoutMs / 1000)}s (its client or gateway is gone); it ends here`,
        );
    }
  }

  close(): void {
    this.sub.unsubscribe();
    this.wake?.();
  }
}
