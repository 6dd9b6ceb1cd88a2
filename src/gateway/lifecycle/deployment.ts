import type { Logger } from '../../shared/log.js';
import type { NatsSettings } from '../../shared/nats.js';
import type { FunctionStatus } from '../../shared/worker-state.js';
import { Instance, type InstanceView } from './instance.js';
import type { Engine } from './launch.js';
import { instanceCount, type DeploymentRecord, type VersionRecord } from './schema.js';

/** An instance that fails this many times in a row without ever serving is given up on (NVCF's restart-loop detection). */
const MAX_FAILED_STARTS = 3;
const RESTART_BASE_MS = 500;
const RESTART_MAX_MS = 10_000;

/** A place for one instance: it outlives the instances that fill it, and counts their failures. */
interface Slot {
  index: number;
  instance: Instance | undefined;
  restarts: number;
  failedStarts: number;
  gaveUp: boolean;
  lastError: string | undefined;
  timer: NodeJS.Timeout | undefined;
}

export interface SlotView extends Partial<Omit<InstanceView, 'state'>> {
  index: number;
  state: InstanceView['state'] | 'restarting' | 'failed';
  restarts: number;
  lastError?: string | undefined;
}

export interface DeploymentEnv {
  engine: Engine | undefined;
  nats: NatsSettings;
  logLevel: string;
  log: Logger;
}

/**
 * The instances of one deployed version, kept at the count its specifications ask for: a dead
 * instance is replaced (after a short backoff), extra ones are drained and stopped. While one is
 * replaced the others keep pulling from the shared work queue, so requests go on being answered.
 */
export class RunningDeployment {
  private readonly slots: Slot[] = [];
  private stopped = false;
  private generation = 0;
  /** Instances scaled away, still draining. */
  private readonly draining = new Set<Promise<void>>();
  /** Every instance not yet stopped: what `killNow` must reach. */
  private readonly live = new Set<Instance>();

  constructor(
    private record: VersionRecord,
    private deployment: DeploymentRecord,
    private readonly env: DeploymentEnv,
  ) {}

  get spec(): DeploymentRecord {
    return this.deployment;
  }

  /** Applies a (new) deployment record: more instances are started, fewer are drained away in the background. */
  apply(deployment: DeploymentRecord, record: VersionRecord = this.record): void {
    this.deployment = deployment;
    this.record = record;
    const want = instanceCount(deployment.deploymentSpecifications);
    const removed = this.slots.splice(want);
    // A new deployment record is another try for instances that were given up on.
    for (const slot of this.slots.filter((s) => s.gaveUp)) {
      Object.assign(slot, { gaveUp: false, failedStarts: 0 });
      this.launch(slot);
    }
    for (const slot of removed) clearTimeout(slot.timer);
    while (this.slots.length < want) {
      const slot: Slot = {
        index: this.slots.length,
        instance: undefined,
        restarts: 0,
        failedStarts: 0,
        gaveUp: false,
        lastError: undefined,
        timer: undefined,
      };
      this.slots.push(slot);
      this.launch(slot);
    }
    for (const slot of removed) {
      if (!slot.instance) continue;
      const done: Promise<void> = this.retire(slot.instance).finally(() => this.draining.delete(done));
      this.draining.add(done);
    }
  }

  private launch(slot: Slot): void {
    if (this.stopped || !this.slots.includes(slot)) return;
    const { env } = this;
    // Spread over the specifications in order, so each instance gets its spec's concurrency and instance type.
    const specs = this.deployment.deploymentSpecifications;
    let index = slot.index;
    const spec = specs.find((s) => (index -= Math.max(1, s.minInstances)) < 0) ?? specs[specs.length - 1]!;
    const instance = new Instance({
      workerId: `${this.record.name.slice(0, 40)}-${this.record.versionId.slice(0, 8)}-${slot.index}-${++this.generation}`,
      record: this.record,
      spec,
      engine: env.engine,
      nats: env.nats,
      logLevel: env.logLevel,
      log: env.log,
      onChange: (changed) => this.changed(slot, changed),
    });
    slot.instance = instance;
    this.live.add(instance);
    instance.start().catch((err: Error) => {
      instance.lastError = `the instance could not start: ${err.message}`;
      this.changed(slot, instance, true);
    });
  }

  private changed(slot: Slot, instance: Instance, failedToStart = false): void {
    if (slot.instance !== instance) return;
    if (instance.state === 'ready') slot.failedStarts = 0;
    if (instance.state !== 'down' && !failedToStart) return;
    slot.lastError = instance.lastError;
    void this.retire(instance);
    if (this.stopped || !this.slots.includes(slot)) return;
    if (!instance.everReady) slot.failedStarts++;
    if (slot.failedStarts >= MAX_FAILED_STARTS) {
      slot.gaveUp = true;
      this.env.log.error(
        { functionVersionId: this.record.versionId, slot: slot.index, reason: slot.lastError },
        'instance gave up',
      );
      return;
    }
    const delay = Math.min(RESTART_MAX_MS, RESTART_BASE_MS * 2 ** slot.failedStarts);
    slot.restarts++;
    this.env.log.info({ functionVersionId: this.record.versionId, slot: slot.index, delay }, 'restarting an instance');
    slot.timer = setTimeout(() => this.launch(slot), delay);
  }

  /** ACTIVE once an instance serves, ERROR when every one has failed, DEPLOYING in between. */
  status(): FunctionStatus {
    if (this.stopped) return 'INACTIVE';
    if (this.slots.some((s) => s.instance?.state === 'ready')) return 'ACTIVE';
    if (this.slots.length > 0 && this.slots.every((s) => s.gaveUp)) return 'ERROR';
    return 'DEPLOYING';
  }

  /** Why the deployment is in ERROR (or the latest failure while it tries again). */
  error(): string | undefined {
    return this.slots.find((s) => s.gaveUp)?.lastError ?? this.slots.find((s) => s.lastError)?.lastError;
  }

  instances(): SlotView[] {
    return this.slots.map((slot) => {
      const view = slot.instance?.view();
      const state = slot.gaveUp
        ? 'failed'
        : view && view.state !== 'down' && view.state !== 'stopped'
          ? view.state
          : 'restarting';
      return { ...view, index: slot.index, state, restarts: slot.restarts, lastError: slot.lastError };
    });
  }

  /** Drains and stops every instance. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const slot of this.slots) clearTimeout(slot.timer);
    await Promise.all([...this.slots.map((slot) => slot.instance && this.retire(slot.instance)), ...this.draining]);
  }

  private retire(instance: Instance): Promise<void> {
    return instance.stop().finally(() => this.live.delete(instance));
  }

  /** Kills every instance at once, synchronously: for a process that exits now. */
  killNow(): void {
    this.stopped = true;
    for (const slot of this.slots) clearTimeout(slot.timer);
    for (const instance of this.live) instance.killNow();
  }
}
