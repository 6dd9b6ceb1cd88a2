import type { Logger } from '../../shared/log.js';
import type { NatsSettings } from '../../shared/nats.js';
import type { FunctionStatus } from '../../shared/worker-state.js';
import { RunningDeployment, type SlotView } from './deployment.js';
import { findEngine, type Engine } from './launch.js';
import type { DeploymentRecord, VersionRecord } from './schema.js';
import type { LifecycleStore } from './store.js';

export interface ControllerOptions {
  gatewayId: string;
  nats: NatsSettings;
  /** Log level handed to the workers it starts (their state lines are read at info). */
  workerLogLevel: string;
  log: Logger;
}

/**
 * Starts and stops the instances of the deployments this gateway owns. The records say what
 * should run; this holds what does. A gateway that stops takes its instances down with it and
 * starts them again from the records when it comes back.
 */
export class DeploymentController {
  private readonly running = new Map<string, RunningDeployment>();
  private engine: Promise<Engine | undefined> | undefined;
  private stopping = false;
  /** Undeployments still draining: a stopping gateway waits for them too. */
  private readonly draining = new Map<RunningDeployment, Promise<void>>();

  constructor(
    private readonly store: LifecycleStore,
    private readonly options: ControllerOptions,
  ) {}

  get gatewayId(): string {
    return this.options.gatewayId;
  }

  /** Brings back the deployments this gateway owned before it stopped. */
  async resume(): Promise<void> {
    for (const deployment of await this.store.deployments()) {
      if (deployment.gatewayId !== this.options.gatewayId) continue;
      const record = await this.store.version(deployment.functionVersionId);
      if (!record) continue;
      this.options.log.info({ functionVersionId: record.versionId }, 'resuming a deployment');
      await this.apply(record, deployment);
    }
  }

  /** Starts a deployment, or rescales one already running to what the record now asks. */
  async apply(record: VersionRecord, deployment: DeploymentRecord): Promise<void> {
    if (this.stopping) return;
    this.engine ??= findEngine();
    let running = this.running.get(record.versionId);
    if (!running) {
      running = new RunningDeployment(record, deployment, {
        engine: record.localCommand ? undefined : await this.engine,
        nats: this.options.nats,
        logLevel: this.options.workerLogLevel,
        log: this.options.log.child({ functionVersionId: record.versionId }),
      });
      this.running.set(record.versionId, running);
    }
    running.apply(deployment, record);
  }

  /** Drains and stops every instance of a version, in the background: it is INACTIVE at once. */
  undeploy(versionId: string): void {
    const running = this.running.get(versionId);
    this.running.delete(versionId);
    if (!running) return;
    this.draining.set(
      running,
      running.stop().finally(() => this.draining.delete(running)),
    );
  }

  /** Resolves once every undeployed version's instances have drained and stopped. */
  async undeployed(): Promise<void> {
    await Promise.all(this.draining.values());
  }

  /** The live status of a version this gateway runs, undefined if it runs none of it. */
  status(versionId: string): FunctionStatus | undefined {
    return this.running.get(versionId)?.status();
  }

  details(
    versionId: string,
  ): { status: FunctionStatus; error?: string | undefined; instances: SlotView[] } | undefined {
    const running = this.running.get(versionId);
    return running && { status: running.status(), error: running.error(), instances: running.instances() };
  }

  /** At gateway stop: every instance drains and stops; the records stay for the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    const all = [...this.running.values()];
    this.running.clear();
    await Promise.all([...all.map((r) => r.stop()), ...this.draining.values()]);
  }

  /**
   * For a process that exits now (a second Ctrl-C, an uncaught error): kills every instance
   * without a drain, synchronously, so none is left running behind it.
   */
  killNow(): void {
    this.stopping = true;
    for (const running of [...this.running.values(), ...this.draining.keys()]) running.killNow();
  }
}
