import type { JetStreamManager } from 'nats';
import { streams } from '../../shared/protocol.js';

/** How stale the floor may grow while no reader of this gateway sees a newer message. */
const REFRESH_MS = 1_000;

/**
 * A lower bound on where a new request's responses can land in NVCF_RS: the highest stream
 * sequence this gateway has seen stored. Every response of a request comes after its publish,
 * so a request records the floor taken before it is published (`resultsFrom` on its record), and
 * its readers start there. Read from sequence 1, each Direct Get walked the whole stream, so
 * every call cost more as the stream grew (docs/performance.md).
 *
 * The floor rises with every message a reader of this gateway reads, and from the stream's own
 * last sequence, asked at most once a second while calls come in (never waited for). A stream
 * made again starts its sequences over: a last sequence below one seen before the ask says so,
 * and the floor starts over with it.
 */
export class ResultsFloor {
  private seq = 0;
  private askedAt = 0;
  private asking = false;

  constructor(private readonly jsm: JetStreamManager) {}

  /** The floor for a request about to be published. */
  take(): number {
    if (!this.asking && Date.now() - this.askedAt >= REFRESH_MS) void this.refresh();
    return this.seq;
  }

  /** A message stored at `seq` was read: later ones come after it. */
  saw(seq: number): void {
    if (seq > this.seq) this.seq = seq;
  }

  async refresh(): Promise<void> {
    this.asking = true;
    this.askedAt = Date.now();
    const before = this.seq;
    try {
      const last = (await this.jsm.streams.info(streams.results)).state.last_seq;
      if (last < before) this.seq = last;
      else this.saw(last);
    } catch {
      // NATS away: the floor stays where it was, which is still below every new message.
    } finally {
      this.asking = false;
    }
  }
}
