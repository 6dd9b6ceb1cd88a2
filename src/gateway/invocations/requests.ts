import { setTimeout as sleep } from 'node:timers/promises';
import type { KV } from 'nats';
import { z } from 'zod';
import { isNoResponders } from '../../shared/nats-errors.js';
import { allKeys } from '../storage/kv.js';

/** How long a new request's record waits out a JetStream without a leader, and how often it asks. */
const ELECTION_WAIT_MS = 5_000;
const ELECTION_RETRY_MS = 200;

/**
 * What the gateway remembers of a request between the client's calls. It lives in the KV bucket
 * `nvcf_requests`, not in memory, so a status poll works after a gateway restart and on any
 * gateway attached to the same NATS. A result is handed out once: a call reserves the
 * record (a conditional update, so of two concurrent polls only one wins), writes the result,
 * and deletes the record only when its client has taken the result whole.
 */
export const PendingRequest = z.object({
  requestId: z.string(),
  functionId: z.string(),
  functionVersionId: z.string(),
  gatewayId: z.string(),
  replyTo: z.string(),
  createdAt: z.number(),
  /** When a client call last ended (or the request was accepted); drives the unpolled cancel. */
  lastSeenAt: z.number(),
  /** The poll window of that call, in seconds. */
  pollSeconds: z.number(),
  /** NVCF_RS held nothing of this request up to this sequence (results-floor.ts); readers start after it. */
  resultsFrom: z.number().optional(),
  /** Stream sequence of the latest progress a caller was shown: a poll waits for a newer one. */
  progressSeq: z.number().optional(),
  /** Set while one call writes the result to its client: others leave it alone until then. */
  deliveringUntil: z.number().optional(),
  /** The API client that created it (front/api-keys.ts); only that client may poll it. */
  owner: z.string().optional(),
});
export type PendingRequest = z.infer<typeof PendingRequest>;

export interface Entry {
  record: PendingRequest;
  revision: number;
}

export class RequestStore {
  constructor(private readonly kv: KV) {}

  /**
   * Writes a new request's record. A JetStream that answers nobody (a cluster electing a leader
   * for the bucket, which takes a few seconds after a node dies) is asked again for a moment, so
   * a call made during an election waits for it instead of being refused; a NATS that cannot be
   * reached at all still fails at once.
   */
  async create(record: PendingRequest): Promise<void> {
    const giveUpAt = Date.now() + ELECTION_WAIT_MS;
    for (;;) {
      try {
        await this.kv.create(record.requestId, JSON.stringify(record));
        return;
      } catch (err) {
        if (!isNoResponders(err) || Date.now() > giveUpAt) throw err;
        await sleep(ELECTION_RETRY_MS);
      }
    }
  }

  async get(requestId: string): Promise<Entry | undefined> {
    const entry = await this.kv.get(requestId);
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined;
    const parsed = PendingRequest.safeParse(entry.json());
    return parsed.success ? { record: parsed.data, revision: entry.revision } : undefined;
  }

  /** Notes that a client call just ended with the request still open, and what progress it showed. */
  async touch(requestId: string, pollSeconds: number, progressSeq?: number): Promise<void> {
    const entry = await this.get(requestId);
    if (!entry) return;
    const record = { ...entry.record, lastSeenAt: Date.now(), pollSeconds };
    if (progressSeq !== undefined) record.progressSeq = Math.max(progressSeq, record.progressSeq ?? 0);
    await this.kv.update(requestId, JSON.stringify(record), entry.revision).catch(() => undefined);
  }

  /**
   * The first step of handing a result out: marks the record as being delivered for `leaseMs`,
   * so a concurrent poll does not write the same result too. `commit` once the client has it
   * whole; `release` when it went away first. A gateway that dies mid-write leaves a lease that
   * simply runs out, and the result is claimable again.
   */
  async reserve(requestId: string, leaseMs: number): Promise<Reservation> {
    for (let tries = 0; tries < 10; tries++) {
      let entry: Entry | undefined;
      try {
        entry = await this.get(requestId);
      } catch (err) {
        return { outcome: 'unknown', error: err as Error };
      }
      if (!entry) return { outcome: 'gone' };
      const now = Date.now();
      if ((entry.record.deliveringUntil ?? 0) > now) return { outcome: 'busy' };
      const record = { ...entry.record, deliveringUntil: now + leaseMs };
      try {
        const revision = await this.kv.update(requestId, JSON.stringify(record), entry.revision);
        return { outcome: 'reserved', lease: new Lease(this.kv, record, revision, leaseMs) };
      } catch {
        // A touch or another reservation came between: read again.
      }
    }
    return { outcome: 'busy' };
  }

  async remove(requestId: string): Promise<void> {
    await this.kv.delete(requestId).catch(() => undefined);
  }

  /** The result is delivered: later polls get 404. See `removeDelivered`. */
  async delivered(requestId: string): Promise<void> {
    await removeDelivered(this.kv, requestId);
  }

  async *all(): AsyncGenerator<PendingRequest> {
    for (const key of await allKeys(this.kv)) {
      const entry = await this.get(key);
      if (entry) yield entry.record;
    }
  }
}

/** Deletes the record of a delivered result. Retried, since a leftover record means a second delivery. */
async function removeDelivered(kv: KV, requestId: string): Promise<void> {
  for (let wait = 250; ; wait = Math.min(wait * 2, 4_000)) {
    try {
      await kv.delete(requestId);
      return;
    } catch (err) {
      if (wait >= 4_000) throw err;
      await sleep(wait);
    }
  }
}

/** NVCF's rule: a request nobody has polled for this long is taken as abandoned. */
export function abandonAfterMs(pollSeconds: number): number {
  return Math.max(2 * pollSeconds * 1000, 10_000);
}

export type Reservation =
  | { outcome: 'reserved'; lease: Lease }
  | { outcome: 'gone' }
  | { outcome: 'busy' }
  | { outcome: 'unknown'; error: Error };

/** One call's right to deliver a result, renewed while it writes. */
export class Lease {
  private readonly renewer: NodeJS.Timeout;
  private ended = false;

  constructor(
    private readonly kv: KV,
    private record: PendingRequest,
    private revision: number,
    leaseMs: number,
  ) {
    this.renewer = setInterval(() => void this.renew(leaseMs), leaseMs / 3);
    this.renewer.unref();
  }

  private async renew(leaseMs: number): Promise<void> {
    if (this.ended) return;
    const record = { ...this.record, deliveringUntil: Date.now() + leaseMs };
    try {
      this.revision = await this.kv.update(record.requestId, JSON.stringify(record), this.revision);
      this.record = record;
    } catch {
      // NATS away: the lease may run out, and at worst a later poll delivers the result again.
    }
  }

  /** The client has the result whole: later polls get 404. */
  async commit(): Promise<void> {
    this.end();
    await removeDelivered(this.kv, this.record.requestId);
  }

  /** The client did not take the result whole: the next poll may have it. */
  async release(): Promise<void> {
    this.end();
    const { deliveringUntil: _held, ...record } = this.record;
    await this.kv.update(record.requestId, JSON.stringify(record), this.revision).catch(() => undefined);
  }

  private end(): void {
    this.ended = true;
    clearInterval(this.renewer);
  }
}
