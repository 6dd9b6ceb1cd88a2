import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from '../../shared/log.js';
import type { NatsSettings } from '../../shared/nats.js';
import { Tail, freePort, signal, startContainer, startWorker, stopProcess, type Engine } from './launch.js';
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
  /** The worker's /v1/health/ready and /metrics ports on 127.0.0.1, once it listens. */
  healthPort?: number | undefined;
  metricsPort?: number | undefined;
  /** The folder holding its inputAssets/ and response/ (mounted at the same path into an image). */
  dir?: string | undefined;
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
  private admin: { healthPort?: number; metricsPort?: number } = {};
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
      ...this.admin,
      dir: this.root || undefined,
      startedAt: this.startedAt,
      lastError: this.lastError,
    };
  }

  async start(): Promise<void> {
    const { options } = this;
    const shared = options.record.localSharedDir;
    if (shared) {
      // Inside the user's shared folder, named after the worker; a container running as another
      // user must reach the folders below (which the worker makes writable by anyone).
      await mkdir(shared, { recursive: true });
      this.root = await mkdtemp(join(shared, `${options.workerId}-`));
      await chmod(this.root, 0o755);
    } else this.root = await mkdtemp(join(tmpdir(), 'nvcf-instance-'));
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

  /**
   * The worker's JSON log: its state changes say whether the instance serves, `admin listening`
   * gives its health and metrics ports, and its warnings and errors go to the gateway's log (the
   * only log a `dev` user sees).
   */
  private workerLine(line: string): void {
    if (!line.startsWith('{')) return;
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(line) as Record<string, unknown>;
    } catch {
      return;
    }
    const { msg, level } = parsed;
    if (level === 'warn' || level === 'error' || level === 'fatal') this.relay(parsed);
    if (msg === 'admin listening')
      this.admin = { healthPort: Number(parsed.healthPort), metricsPort: Number(parsed.metricsPort) };
    if (msg !== 'worker state' || this.stopping || this.stateNow === 'down') return;
    if (parsed.to === 'running') {
      this.everReady = true;
      this.set('ready');
    } else if (parsed.to === 'unhealthy') this.set('unhealthy');
  }

  /** Logs a worker's line again as the gateway's, keeping its fields but none the gateway's own lines carry already. */
  private relay(line: Record<string, unknown>): void {
    const { log } = this.options;
    const own = new Set(['level', 'time', 'pid', 'hostname', 'msg', ...Object.keys(log.bindings())]);
    const fields = Object.fromEntries(Object.entries(line).filter(([key]) => !own.has(key)));
    const level = line.level === 'warn' ? 'warn' : 'error';
    log[level]({ ...fields, workerId: this.options.workerId }, typeof line.msg === 'string' ? line.msg : '');
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
      // A folder in the user's shared folder is theirs to look at afterwards.
      if (this.root && !this.options.record.localSharedDir)
        await rm(this.root, { recursive: true, force: true }).catch(() => undefined);
      if (this.stateNow !== 'down') this.stateNow = 'stopped';
    })();
    return this.stopping;
  }

  /**
   * For a process that must exit now (a second Ctrl-C): kills the worker and the container
   * without a drain, and removes what `stop` would, synchronously (it runs in an 'exit' handler).
   */
  killNow(): void {
    if (this.worker) signal(this.worker, 'SIGKILL', false);
    if (this.container) signal(this.container, 'SIGKILL', true);
    if (this.root && !this.options.record.localSharedDir)
      rmSync(this.root, { recursive: true, force: true, maxRetries: 5 });
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
