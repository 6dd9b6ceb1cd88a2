import type { JetStreamManager } from 'nats';
import { streams, subjects } from '../../shared/protocol.js';
import { isNatsNotFound } from '../../shared/nats-errors.js';

/** Where a queued request stands: still waiting (with its place), taken by a worker, or gone. */
export type QueueState = { state: 'waiting'; position: number } | { state: 'taken' } | { state: 'absent' };

const POSITION_CAP = 1000;

/**
 * Read-only views of the work queues, from JetStream's own numbers: no bookkeeping of ours to
 * drift. A work-queue stream holds a message until a worker acks it, and the shared consumer's
 * delivered sequence says how far workers have taken.
 */
export class Queues {
  constructor(private readonly jsm: JetStreamManager) {}

  /** Requests not yet taken by a worker; 0 for a version that never had a queue. */
  async length(functionVersionId: string): Promise<number> {
    try {
      const info = await this.jsm.consumers.info(streams.work(functionVersionId), streams.workConsumer);
      return info.num_pending;
    } catch (err) {
      if (isNatsNotFound(err)) return 0;
      throw err;
    }
  }

  async stateOf(functionVersionId: string, requestId: string): Promise<QueueState> {
    const stream = streams.work(functionVersionId);
    let seq: number;
    try {
      const message = await this.jsm.streams.getMessage(stream, {
        last_by_subj: subjects.work(functionVersionId, requestId),
      });
      seq = message.seq;
    } catch (err) {
      if (isNatsNotFound(err)) return { state: 'absent' };
      throw err;
    }
    let delivered = 0;
    try {
      delivered = (await this.jsm.consumers.info(stream, streams.workConsumer)).delivered.stream_seq;
    } catch (err) {
      if (!isNatsNotFound(err)) throw err;
    }
    if (seq <= delivered) return { state: 'taken' };
    const first = (await this.jsm.streams.info(stream)).state.first_seq;
    // Sequences between the last delivered one and ours, less any already removed: an estimate, as NVCF's is.
    return { state: 'waiting', position: Math.min(POSITION_CAP, seq - Math.max(delivered, first - 1)) };
  }

  /**
   * Takes a request out of its queue so no worker starts it. It deletes the one message by its
   * sequence: a purge filtered by subject would also move the shared consumer past every earlier
   * message still waiting (nats-server 2.9 does), and those requests would never be delivered.
   */
  async purge(functionVersionId: string, requestId: string): Promise<void> {
    const stream = streams.work(functionVersionId);
    try {
      const message = await this.jsm.streams.getMessage(stream, {
        last_by_subj: subjects.work(functionVersionId, requestId),
      });
      await this.jsm.streams.deleteMessage(stream, message.seq, false);
    } catch (err) {
      if (!isNatsNotFound(err)) throw err;
    }
  }
}
