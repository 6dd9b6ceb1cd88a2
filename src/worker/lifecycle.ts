import { appendFile, chmod, mkdir, realpath } from 'node:fs/promises';
import type { Server } from 'node:http';
import { Events, type NatsConnection, type Subscription } from 'nats';
import { closeServer, createHealthServer, createMetricsServer, listen } from '../shared/probe-servers.js';
import { CancelRegistry } from './cancels.js';
import type { WorkerConfig } from './config.js';
import { ContainerClient } from './request/container-client.js';
import { handleDelivery } from './request/handle.js';
import { refuseDelivery, RETRY_DELAY_MS } from './request/settle.js';
import { drainIntake, type DrainReport } from './drain.js';
import { HealthMonitor, waitUntilHealthy } from './container-health.js';
import { Heartbeat, type WorkerStateName } from './heartbeat.js';
import { Intake, type GateState } from './intake.js';
import { janitorFor, type Janitor } from './janitor.js';
import { releaseSpareDirs } from './outputs/dir-calls.js';
import type { Logger } from '../shared/log.js';
import { createWorkerMetrics } from './metrics.js';
import { connectNats, ensureResults, ensureWorkQueue, frameBodyLimit } from '../shared/nats.js';
import { streams, subjects } from '../shared/protocol.js';

/**
 * The worker's life: starting → waiting for the container → running ⇄ unhealthy → draining →
 * stopped (or failed). Every transition goes through setState, which logs it and tells the
 * heartbeat. This file wires the stages; each stage lives in its own module.
 */
export type LifecycleState = 'starting' | 'waiting' | 'running' | 'unhealthy' | 'draining' | 'stopped' | 'failed';

export class Worker {
  private stateNow: LifecycleState = 'starting';
  private nc: NatsConnection | undefined;
  private intake: Intake | undefined;
  private monitor: HealthMonitor | undefined;
  private heartbeat: Heartbeat | undefined;
  private realResponseDir = '';
  private janitor: Janitor | undefined;
  private cancelSub: Subscription | undefined;
  private readonly servers: Server[] = [];
  private readonly metrics = createWorkerMetrics();
  private readonly cancels = new CancelRegistry();
  private readonly container: ContainerClient;
  private readonly stopRequested = new AbortController();
  private natsConnected = false;
  private finishedWhileDraining = 0;
  private failure: string | undefined;
  /** Ports actually bound, for tests and logs (0 in the config means "pick one"). */
  readonly ports = { health: 0, metrics: 0 };

  constructor(
    private readonly config: WorkerConfig,
    private readonly log: Logger,
  ) {
    this.container = new ContainerClient(config.inference.origin, config.concurrency, (queued) =>
      this.log.error(
        { queued },
        'the connection pool to the container stalled; replaced it, failing the calls waiting in it',
      ),
    );
    this.metrics.capacity.set(config.concurrency);
  }

  get state(): LifecycleState {
    return this.stateNow;
  }

  /** Runs until stopped; resolves with the process exit code. */
  async run(): Promise<number> {
    try {
      await this.startAdmin();
      await this.prepareDirectories();
      // NATS may be unreachable for a long time at start; a stop signal must still be heard.
      if (!(await Promise.race([this.connect().then(() => true), this.stopped().then(() => false)]))) {
        this.log.info('stopped before NATS could be reached');
        return 0;
      }
      this.setState('waiting');
      const failure = await waitUntilHealthy(this.config.health, this.stopRequested.signal, this.log);
      if (failure && !this.stopRequested.signal.aborted)
        return await this.fail(
          `the inference container did not become healthy within ${this.config.health.readyTimeoutMs / 1000}s: ${failure}`,
        );
      if (!this.stopRequested.signal.aborted) this.startServing();
      await this.stopped();
      const report = await this.drain();
      this.log.info(report, 'drained; exiting');
      return 0;
    } catch (err) {
      return await this.fail(`worker failed: ${(err as Error).message}`);
    } finally {
      await this.close();
    }
  }

  /** First signal: stop taking work, finish what runs, then exit 0. */
  requestStop(): void {
    this.stopRequested.abort();
  }

  /** Resolves once a stop has been requested (at once if it already has). */
  private stopped(): Promise<void> {
    const signal = this.stopRequested.signal;
    if (signal.aborted) return Promise.resolve();
    return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  }

  notReadyReasons(): string[] {
    const reasons: string[] = [];
    if (this.stateNow !== 'running') reasons.push(`worker is ${this.stateNow}`);
    if (this.monitor && !this.monitor.healthy) reasons.push('inference container is unhealthy');
    if (!this.natsConnected) reasons.push('not connected to NATS');
    return reasons;
  }

  private setState(next: LifecycleState, detail?: string): void {
    if (next === this.stateNow) return;
    this.log.info({ from: this.stateNow, to: next, ...(detail ? { detail } : {}) }, 'worker state');
    this.stateNow = next;
    void this.heartbeat?.beat();
  }

  private async startAdmin(): Promise<void> {
    const health = createHealthServer(this);
    const metrics = createMetricsServer(this.metrics.registry);
    this.servers.push(health, metrics);
    this.ports.health = await listen(health, this.config.healthPort);
    this.ports.metrics = await listen(metrics, this.config.metricsPort);
    this.log.info({ healthPort: this.ports.health, metricsPort: this.ports.metrics }, 'admin listening');
  }

  private async prepareDirectories(): Promise<void> {
    for (const dir of [this.config.assetDir, this.config.responseDir]) {
      await mkdir(dir, { recursive: true, mode: 0o777 });
      await chmod(dir, 0o777).catch(() => undefined); // shared with a container of another user
    }
    await mkdir(this.config.spoolDir, { recursive: true, mode: 0o700 });
    this.realResponseDir = await realpath(this.config.responseDir);
    this.janitor = janitorFor(this.config, this.log.child({ stage: 'janitor' }));
    this.janitor.start();
  }

  private async connect(): Promise<void> {
    const nc = await connectNats(this.config.nats, `nvcf-worker ${this.config.workerId}`);
    this.nc = nc;
    this.natsConnected = true;
    void this.watchConnection(nc);
    const jsm = await nc.jetstreamManager();
    await ensureWorkQueue(jsm, this.config.functionVersionId, this.config.nats);
    await ensureResults(jsm, this.config.nats.resultRetentionMs, this.config.nats.replicas);
    this.heartbeat = new Heartbeat(
      nc,
      {
        workerId: this.config.workerId,
        functionId: this.config.functionId,
        functionVersionId: this.config.functionVersionId,
        functionName: this.config.functionName,
        ncaId: this.config.ncaId,
        inferenceUrl: this.config.inference.path,
        capacity: this.config.concurrency,
      },
      { state: () => this.heartbeatState() },
      this.log.child({ stage: 'heartbeat' }),
      this.config.nats.replicas,
    );
    await this.heartbeat.start();
    this.log.info(
      { servers: this.config.nats.servers, functionVersionId: this.config.functionVersionId },
      'connected to NATS',
    );
  }

  private async watchConnection(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === Events.Disconnect) this.natsConnected = false;
      if (status.type === Events.Reconnect) this.natsConnected = true;
      if (status.type === Events.Disconnect || status.type === Events.Reconnect)
        this.log.warn({ event: status.type, server: status.data }, 'NATS connection');
    }
  }

  private startServing(): void {
    const nc = this.nc!;
    const js = nc.jetstream();
    const log = this.log.child({ stage: 'request' });
    this.cancelSub = nc.subscribe(subjects.cancel(this.config.functionVersionId), {
      callback: (_err, msg) => {
        const requestId = msg.string().trim();
        const running = this.cancels.cancel(requestId);
        this.log.info({ requestId, running }, 'cancel received');
      },
    });
    void nc
      .jetstreamManager()
      .then(async (jsm) => {
        const consumer = await js.consumers.get(streams.work(this.config.functionVersionId), streams.workConsumer);
        const info = await consumer.info();
        const maxDeliver = info.config.max_deliver && info.config.max_deliver > 0 ? info.config.max_deliver : Infinity;
        const deps = {
          config: this.config,
          nc,
          js,
          jsm,
          container: this.container,
          cancels: this.cancels,
          realResponseDir: this.realResponseDir,
          maxDeliver,
          log,
          metrics: this.metrics,
          bodyLimit: frameBodyLimit(nc),
        };
        this.intake = new Intake({
          consumer,
          capacity: this.config.concurrency,
          ackWaitMs: (info.config.ack_wait ?? 30e9) / 1_000_000,
          gate: () => this.gate(),
          handle: async (msg) => {
            const outcome = await handleDelivery(msg, deps);
            this.metrics.requests.inc({ outcome });
            if (this.stateNow === 'draining') this.finishedWhileDraining++;
          },
          unhealthyRetryMs: RETRY_DELAY_MS,
          maxDeliver,
          refuse: (msg, gate) => refuseDelivery(msg, gate, deps),
          log: this.log.child({ stage: 'intake' }),
          metrics: this.metrics,
        });
        this.intake.start();
      })
      .catch(async (err: Error) => {
        process.exitCode = await this.fail(`could not start pulling work: ${err.message}`);
        this.requestStop();
      });
    this.monitor = new HealthMonitor(this.config.health, (healthy, reason) => {
      this.metrics.containerHealthy.set(healthy ? 1 : 0);
      if (this.stateNow === 'draining') return;
      this.setState(healthy ? 'running' : 'unhealthy', reason);
      if (healthy) this.intake?.poke();
    });
    this.metrics.containerHealthy.set(1);
    this.monitor.start();
    this.setState('running');
  }

  private gate(): GateState {
    if (this.stateNow === 'draining' || this.stopRequested.signal.aborted) return 'draining';
    return this.monitor?.healthy === false ? 'unhealthy' : 'open';
  }

  /** Not ready first, so nothing new arrives; then the intake drains within the grace. */
  private async drain(): Promise<DrainReport> {
    this.setState('draining');
    if (!this.intake) return { finished: 0, returned: 0, aborted: 0 };
    return drainIntake(this.intake, {
      graceMs: this.config.drainGraceMs,
      cancels: this.cancels,
      log: this.log,
      finished: () => this.finishedWhileDraining,
    });
  }

  private async fail(message: string): Promise<number> {
    this.failure = message;
    this.log.error({ err: message }, 'worker failed');
    this.setState('failed', message);
    // Its own mode: the worker's command clears the umask (shared-dir.ts).
    await appendFile(this.config.terminationLogPath, `${JSON.stringify({ message, isInternal: false })}\n`, {
      mode: 0o644,
    }).catch((err: Error) =>
      this.log.warn({ err: err.message, path: this.config.terminationLogPath }, 'could not write the termination log'),
    );
    return 1;
  }

  private heartbeatState(): { state: WorkerStateName; message?: string; inFlight: number } {
    const byLifecycle: Record<LifecycleState, WorkerStateName> = {
      starting: 'starting',
      waiting: 'starting',
      running: 'ready',
      unhealthy: 'unhealthy',
      draining: 'draining',
      stopped: 'stopped',
      failed: 'error',
    };
    return {
      state: byLifecycle[this.stateNow],
      inFlight: this.intake?.inFlight ?? 0,
      ...(this.failure ? { message: this.failure } : {}),
    };
  }

  private async close(): Promise<void> {
    this.monitor?.stop();
    this.janitor?.stop();
    this.intake?.close();
    this.cancelSub?.unsubscribe();
    await this.heartbeat?.stop(this.stateNow === 'failed').catch(() => undefined);
    if (this.stateNow !== 'failed') this.setState('stopped');
    await this.nc?.drain().catch(() => undefined);
    await this.container.destroy().catch(() => undefined);
    await Promise.all([...this.servers.map(closeServer), releaseSpareDirs(this.config.responseDir)]);
  }
}
