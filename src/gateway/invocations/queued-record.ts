import { setTimeout as sleep } from 'node:timers/promises';
import type { GatewayContext } from '../context.js';
import type { PendingRequest } from './requests.js';

/**
 * A request no other call knows of yet gets its record once it is this old: from then on a
 * gateway that dies with the call open leaves a record, and the sweep of another gateway (or of
 * this one, restarted) cancels the request nobody can poll.
 */
const RECORD_AFTER_MS = 1_000;
/** How long an answer that hands out the request id waits for NATS to take the record before it goes anyway. */
const RECORD_PATIENCE_MS = 1_000;
/** How often a record NATS did not take is written again while its caller holds the request id. */
const RETRY_MS = 500;

type Ctx = Pick<GatewayContext, 'requests' | 'unrecorded' | 'log'>;

/**
 * The record of a request the call that queued it holds (requests.ts), written only once
 * something needs it: a 202 or a progress report, which hand the client its id to poll with; a
 * result that needs a lease; or the request's first second passing. Most calls are answered
 * sooner, with a small final, and never write or delete a record: two JetStream writes, and a
 * round trip before the publish, fewer per call (docs/performance.md).
 */
export class QueuedRecord {
  private writing: Promise<boolean> | undefined;
  private written = false;
  private retrying = false;
  private over = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly ctx: Ctx,
    readonly record: PendingRequest,
  ) {
    this.timer = setTimeout(() => void this.write(), RECORD_AFTER_MS);
  }

  /** Writes the record unless it is there; true once it is, false while NATS does not take it. */
  write(): Promise<boolean> {
    if (this.written) return Promise.resolve(true);
    this.writing ??= this.create().finally(() => (this.writing = undefined));
    return this.writing;
  }

  /**
   * Before an answer that gives the client its request id to poll with. When NATS does not
   * take the record within `patienceMs`, the answer goes out anyway, the record is written as
   * soon as NATS is back, and until then this gateway answers polls of it from memory.
   */
  async beforeHandingOutId(patienceMs = RECORD_PATIENCE_MS): Promise<boolean> {
    const done = await Promise.race([this.write(), sleep(patienceMs, false)]);
    if (!done) this.keepTrying();
    return done;
  }

  /** The call is over and nobody can ask for the request again (delivered, cancelled): its record goes. */
  async discard(): Promise<void> {
    this.over = true;
    clearTimeout(this.timer);
    this.ctx.unrecorded.delete(this.record.requestId);
    if (this.written || (await this.writing)) await this.ctx.requests.delivered(this.record.requestId);
  }

  /** The call ended; a record already written (or being written for a poll) stays for the polls. */
  close(): void {
    clearTimeout(this.timer);
  }

  private keepTrying(): void {
    if (this.retrying || this.over) return;
    this.retrying = true;
    const { requestId } = this.record;
    this.ctx.unrecorded.set(requestId, this.record);
    void (async () => {
      while (!this.over && !(await this.write())) await sleep(RETRY_MS);
      this.ctx.unrecorded.delete(requestId);
      this.retrying = false;
    })();
  }

  private async create(): Promise<boolean> {
    if (this.over) return false;
    try {
      await this.ctx.requests.create(this.record);
      this.written = true;
    } catch (err) {
      // A create that timed out may have been stored after all: then it is there.
      this.written = Boolean(await this.ctx.requests.get(this.record.requestId).catch(() => undefined));
      if (!this.written)
        this.ctx.log.debug(
          { requestId: this.record.requestId, err: (err as Error).message },
          'the request record is not written yet',
        );
    }
    return this.written;
  }
}
