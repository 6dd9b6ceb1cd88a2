import type { KV, NatsConnection } from 'nats';
import type { Logger } from '../../shared/log.js';
import { allKeys } from '../storage/kv.js';
import { WORKER_RECORD_TTL_MS, buckets } from '../../shared/protocol.js';
import { WorkerState, functionStatus, type FunctionStatus } from '../../shared/worker-state.js';

/** A function version the harness has seen a worker register for. */
export interface KnownVersion {
  functionId: string;
  functionVersionId: string;
  name: string;
  ncaId: string;
  inferenceUrl: string;
  createdAt: number;
}

export interface VersionView extends KnownVersion {
  status: FunctionStatus;
  workers: number;
}

/**
 * The functions seen by the harness. Worker records (`nvcf_workers`, TTL 60 s) say what runs
 * now; every version ever seen is also written to `nvcf_functions`, which has no TTL, so that a
 * function whose workers all stopped is still listed, as INACTIVE, the way NVCF lists an
 * undeployed function.
 */
export class FunctionRegistry {
  private readonly workers = new Map<string, WorkerState>();
  private readonly versions = new Map<string, KnownVersion>();
  private stopWatch: (() => void) | undefined;

  private constructor(
    private readonly workersKv: KV,
    private readonly catalog: KV,
    private readonly log: Logger,
  ) {}

  static async open(nc: NatsConnection, log: Logger, replicas: number): Promise<FunctionRegistry> {
    const views = nc.jetstream().views;
    const workersKv = await views.kv(buckets.workers, { history: 1, ttl: WORKER_RECORD_TTL_MS, replicas });
    const catalog = await views.kv(buckets.functions, { history: 1, replicas });
    const registry = new FunctionRegistry(workersKv, catalog, log);
    await registry.start();
    return registry;
  }

  private async start(): Promise<void> {
    for (const key of await allKeys(this.catalog)) {
      const entry = await this.catalog.get(key);
      if (entry?.operation === 'PUT') this.versions.set(key, entry.json<KnownVersion>());
    }
    let resolveInitial: () => void = () => undefined;
    const initial = new Promise<void>((resolve) => (resolveInitial = resolve));
    const watch = await this.workersKv.watch({ initializedFn: () => resolveInitial() });
    this.stopWatch = () => watch.stop();
    void (async () => {
      for await (const entry of watch) {
        if (entry.operation !== 'PUT') this.workers.delete(entry.key);
        else {
          const parsed = WorkerState.safeParse(safeJson(entry.value));
          if (parsed.success) this.seen(entry.key, parsed.data);
          else this.log.warn({ key: entry.key }, 'ignoring a malformed worker state record');
        }
      }
    })().catch((err: Error) =>
      this.log.error({ err: err.message }, 'watching worker records stopped; function status may be stale'),
    );
    await initial;
  }

  private seen(key: string, record: WorkerState): void {
    this.workers.set(key, record);
    // TTL expiries make no watch event: forget records the bucket has dropped by now.
    for (const [other, known] of this.workers)
      if (record.updatedAt - known.updatedAt > WORKER_RECORD_TTL_MS) this.workers.delete(other);
    const fv = record.functionVersionId.toLowerCase();
    const known = this.versions.get(fv);
    if (known && known.inferenceUrl === (record.inferenceUrl ?? '/') && known.name === record.functionName) return;
    const version: KnownVersion = {
      functionId: record.functionId.toLowerCase(),
      functionVersionId: fv,
      name: record.functionName,
      ncaId: record.ncaId,
      inferenceUrl: record.inferenceUrl ?? '/',
      createdAt: known?.createdAt ?? Date.now(),
    };
    this.versions.set(fv, version);
    void this.catalog
      .put(fv, JSON.stringify(version))
      .catch((err: Error) => this.log.warn({ err: err.message }, 'could not record a function version'));
  }

  version(functionVersionId: string): VersionView | undefined {
    const known = this.versions.get(functionVersionId.toLowerCase());
    return known ? this.view(known) : undefined;
  }

  versionsOf(functionId: string): VersionView[] {
    return this.all().filter((v) => v.functionId === functionId.toLowerCase());
  }

  all(): VersionView[] {
    return [...this.versions.values()].map((v) => this.view(v));
  }

  private view(known: KnownVersion): VersionView {
    const records = [...this.workers.values()].filter(
      (w) => w.functionVersionId.toLowerCase() === known.functionVersionId,
    );
    return { ...known, status: functionStatus(records, Date.now()), workers: records.length };
  }

  stop(): void {
    this.stopWatch?.();
  }
}

function safeJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch {
    return undefined;
  }
}
