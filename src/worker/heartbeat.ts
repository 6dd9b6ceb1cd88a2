import type { KV, NatsConnection } from 'nats';
import type { Logger } from '../shared/log.js';
import { HEARTBEAT_INTERVAL_MS, PROTOCOL_VERSION, WORKER_RECORD_TTL_MS, buckets } from '../shared/protocol.js';
import { WorkerState } from '../shared/worker-state.js';

export type WorkerStateName = WorkerState['state'];

export interface HeartbeatSource {
  state(): { state: WorkerStateName; message?: string | undefined; inFlight: number };
}

/**
 * Keeps this worker's state record fresh in the `nvcf_workers` bucket, from which the gateway
 * computes function status (ACTIVE, DEPLOYING, ERROR, INACTIVE). The bucket's TTL removes the
 * record of a worker that died without saying so.
 */
export class Heartbeat {
  private kv: KV | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly nc: NatsConnection,
    private readonly identity: Pick<
      WorkerState,
      'workerId' | 'functionId' | 'functionVersionId' | 'functionName' | 'ncaId' | 'inferenceUrl'
    > & { capacity: number },
    private readonly source: HeartbeatSource,
    private readonly log: Logger,
    /** Replicas of the bucket, should this worker be the one to create it. */
    private readonly replicas = 1,
  ) {}

  async start(): Promise<void> {
    this.kv = await this.nc.jetstream().views.kv(buckets.workers, {
      history: 1,
      ttl: WORKER_RECORD_TTL_MS,
      replicas: this.replicas,
    });
    await this.beat();
    this.timer = setInterval(() => void this.beat(), HEARTBEAT_INTERVAL_MS);
    this.timer.unref();
  }

  /** Writes the record now, for state changes the gateway should see at once. */
  async beat(): Promise<void> {
    if (!this.kv) return;
    const { state, message, inFlight } = this.source.state();
    const { workerId, functionId, functionVersionId, functionName, ncaId, inferenceUrl, capacity } = this.identity;
    // Field by field, never a spread: whatever else the caller's object holds stays out of NATS.
    try {
      const record = WorkerState.parse({
        v: PROTOCOL_VERSION,
        workerId,
        functionId,
        functionVersionId,
        functionName,
        ncaId,
        ...(inferenceUrl ? { inferenceUrl } : {}),
        state,
        ...(message ? { message } : {}),
        capacity,
        inFlight,
        updatedAt: Date.now(),
      });
      await this.kv.put(this.key, JSON.stringify(record));
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not write the worker state record');
    }
  }

  /** Removes the record on a clean exit: a stopped worker does not count toward any state. */
  async stop(finalBeat = false): Promise<void> {
    clearInterval(this.timer);
    if (!this.kv) return;
    if (finalBeat) await this.beat();
    else await this.kv.delete(this.key).catch(() => undefined);
    this.kv = undefined;
  }

  private get key(): string {
    return `${this.identity.functionVersionId}.${this.identity.workerId}`;
  }
}
