import type { ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../shared/log.js';
import type { NatsSettings } from '../../shared/nats.js';
import { Tail, freePort, startContainer, startWorker, stopProcess, type Engine } from './launch.js';
import type { DeploymentSpecification, VersionRecord } from './schema.js';

/**
 * One instance of a deployment, as NVCF runs a pod: the user's container and a worker beside
 * it. It lives once: when either process ends unasked, the instance is `down` with the reason,
 * and the deployment replaces it with a new one.
 */
export type InstanceState = 'starting' | 'ready' | 'unhealthy' | 'down' | 'stopping' | 'stopped';

/** How long a stopped worker may drain (its DRAIN_GRACE is 20 s), and how long a container gets after SIGTERM. */
const WORKER_STOP_MS = 25_000;
const CONTAINER_STOP_MS = 5_000;

export interface InstanceOptions {
  workerId: string;
  record: VersionRecord;
  spec: DeploymentSpecification;
  engine: Engine | undefined;
  nats: NatsSettings;
  logLevel: string;
  log: Logger;
  /** Told of every change of state; `down` carries the reason in `lastError`. */
  onChange: (instance: Instance) => void;
}

export interface InstanceView {
  workerId: string;
  state: InstanceState;
  port: number;
  containerPid?: number | undefined;
  workerPid?: number | undefined;
  startedAt: string;
  lastError?: string | undefined;
}

export class Instance {
  private stateNow: InstanceState = 'starting';
  private container: ChildProcess | undefined;
  private worker: ChildProcess | undefined;
  private readonly containerTail = new Tail();
  private readonly workerTail = new Tail(10);
  private root = '';
  private port = 0;
  private readonly startedAt = new Date().toISOString();
  private stopping: Promise<void> | undefined;
  lastError: string | undefined;
  everReady = false;

  constructor(private readonly options: InstanceOptions) {}

  get state(): InstanceState {
    return this.stateNow;
  }

  view(): InstanceView {
    return {
      workerId: this.options.workerId,
      state: this.stateNow,
      port: this.port,
      containerPid: this.container?.pid,
      workerPid: this.worker?.pid,
      startedAt: this.startedAt,
      lastError: this.lastError,
    };
  }

  async start(): Promise<void> {
    const { options } = this;
    this.root = await mkdtemp(join(tmpdir(), 'nvcf-instance-'));
    const dirs = {
      assets: join(this.root, 'inputAssets'),
      responses: join(this.root, 'response'),
      terminationLog: join(this.root, 'termination-log'),
    };
    await Promise.all([mkdir(dirs.assets), mkdir(dirs.responses)]);
    const endpoint = options.record.localEndpoint ? new URL(options.record.localEndpoint) : undefined;
    this.port = endpoint ? Number(endpoint.port || 80) : await freePort();
    if (this.stopping) return;
    if (!endpoint) this.startContainer(dirs);
    if (this.stateNow === 'down') return;
    const host = endpoint?.hostname.replace(/^\[|\]$/g, '') ?? '127.0.0.1';
    const worker = startWorker({ ...options, host, port: this.port, dirs });
    this.worker = worker;
    worker.stdout?.on('data', (d: Buffer) => {
      for (const line of this.workerTail.push(d)) this.workerLine(line);
    });
    worker.stderr?.on('data', (d: Buffer) => this.workerTail.push(d));
    worker.on('error', (err) => this.down(`the worker could not start: ${err.message}`));
    worker.on('exit', (code, signal) => {
      void readFile(dirs.terminationLog, 'utf8')
        .then((text) => text.trim().split('\n').pop() ?? '')
        .catch(() => '')
        .then((last) => {
          const reason = messageOf(last) ?? this.workerTail.text(5);
          this.down(`the worker exited (${signal ?? `code ${code}`})${reason ? `: ${reason}` : ''}`);
        });
    });
  }

  private startContainer(dirs: { assets: string; responses: string }): void {
    try {
      this.container = startContainer({
        record: this.options.record,
        engine: this.options.engine,
        name: this.options.workerId,
        port: this.port,
        dirs: [dirs.assets, dirs.responses],
      });
    } catch (err) {
      return this.down((err as Error).message);
    }
    const container = this.container;
    container.on('error', (err) => this.down(`the container could not start: ${err.message}`));
    container.stdout?.on('data', (d: Buffer) => this.containerTail.push(d));
    container.stderr?.on('data', (d: Buffer) => this.containerTail.push(d));
    container.on('exit', (code, signal) => {
      const tail = this.containerTail.text(8);
      this.down(`the container exited (${signal ?? `code ${code}`})${tail ? `; its last output:\n${tail}` : ''}`);
    });
  }

  /** The worker logs each change of its state: that is how the instance knows it is serving. */
  private workerLine(line: string): void {
    if (!line.startsWith('{')) return;
    let parsed: { msg?: unknown; to?: unknown };
    try {
      parsed = JSON.parse(line) as { msg?: unknown; to?: unknown };
    } catch {
      return;
    }
    if (parsed.msg !== 'worker state' || this.stopping || this.stateNow === 'down') return;
    if (parsed.to === 'running') {
      this.everReady = true;
      this.set('ready');
    } else if (parsed.to === 'unhealthy') this.set('unhealthy');
  }

  private set(state: InstanceState): void {
    if (this.stateNow === state) return;
    this.stateNow = state;
    this.options.onChange(this);
  }

  private down(reason: string): void {
    if (this.stopping || this.stateNow === 'down') return;
    this.lastError = reason;
    this.options.log.warn({ workerId: this.options.workerId, reason }, 'instance down');
    this.set('down');
  }

  /** Drains the worker (SIGTERM: it finishes what it holds), then stops the container. Safe to repeat. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (this.stateNow !== 'down') this.stateNow = 'stopping';
      if (this.worker) await stopProcess(this.worker, WORKER_STOP_MS, false);
      if (this.container) await stopProcess(this.container, CONTAINER_STOP_MS, true);
      if (this.root) await rm(this.root, { recursive: true, force: true }).catch(() => undefined);
      if (this.stateNow !== 'down') this.stateNow = 'stopped';
    })();
    return this.stopping;
  }
}

function messageOf(line: string): string | undefined {
  if (!line) return undefined;
  try {
    const parsed = JSON.parse(line) as { message?: unknown };
    return typeof parsed.message === 'string' ? parsed.message : line;
  } catch {
    return line;
  }
}
