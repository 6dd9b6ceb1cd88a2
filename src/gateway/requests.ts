import type { KV } from 'nats';
import { z } from 'zod';
import { allKeys } from './context.js';

/**
 * What the gateway remembers of a request between the client's calls. It lives in the KV bucket
 * `nvcf_requests`, not in memory, so a status poll works after a gateway restart and on any
 * gateway attached to the same NATS. Deleting the record is how a result is handed out once:
 * the delete is conditional on the revision, so of two concurrent polls only one wins.
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
  /** The API client that created it (api-keys.ts); only that client may poll it. */
  owner: z.string().optional(),
});
export type PendingRequest = z.infer<typeof PendingRequest>;

export interface Entry {
  record: PendingRequest;
  revision: number;
}

export class RequestStore {
  constructor(private readonly kv: KV) {}

  async create(record: PendingRequest): Promise<void> {
    await this.kv.create(record.requestId, JSON.stringify(record));
  }

  async get(requestId: string): Promise<Entry | undefined> {
    const entry = await this.kv.get(requestId);
    if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined;
    const parsed = PendingRequest.safeParse(entry.json());
    return parsed.success ? { record: parsed.data, revision: entry.revision } : undefined;
  }

  /** Notes that a client call just ended with the request still open. */
  async touch(requestId: string, pollSeconds: number): Promise<void> {
    const entry = await this.get(requestId);
    if (!entry) return;
    const record = { ...entry.record, lastSeenAt: Date.now(), pollSeconds };
    await this.kv.update(requestId, JSON.stringify(record), entry.revision).catch(() => undefined);
  }

  /**
   * True for exactly one caller: the one that removes the record and so owns the result. Throws
   * ClaimNotTried when the record could not even be read, so nothing was changed and the result
   * is still there for the next call; any other error leaves the claim's fate unknown (a delete
   * sent while NATS was away may still be applied when it is back).
   */
  async claim(requestId: string): Promise<boolean> {
    // A touch by another call changes the revision without taking the result: read and try again.
    for (let tries = 0; tries < 10; tries++) {
      const entry = await this.get(requestId).catch((err: Error) => {
        throw tries === 0 ? new ClaimNotTried(err) : err;
      });
      if (!entry) return false;
      try {
        await this.kv.delete(requestId, { previousSeq: entry.revision });
        return true;
      } catch {
        // Lost a race: either another claim (the record is gone now) or a touch (it is not).
      }
    }
    return false;
  }

  async remove(requestId: string): Promise<void> {
    await this.kv.delete(requestId).catch(() => undefined);
  }

  async *all(): AsyncGenerator<PendingRequest> {
    for (const key of await allKeys(this.kv)) {
      const entry = await this.get(key);
      if (entry) yield entry.record;
    }
  }
}

/** NVCF's rule: a request nobody has polled for this long is taken as abandoned. */
export function abandonAfterMs(pollSeconds: number): number {
  return Math.max(2 * pollSeconds * 1000, 10_000);
}

/** The record could not be read (NATS out of reach): no claim was attempted. */
export class ClaimNotTried extends Error {
  constructor(cause: Error) {
    super(`the request record could not be read: ${cause.message}`, { cause });
  }
}
