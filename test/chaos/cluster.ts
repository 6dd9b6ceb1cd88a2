import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { workerEnv } from '../support/env.js';
import { waitForStatus } from '../support/gateway.js';
import { isState, spawnSidecar, type WorkerProcess } from '../support/process.js';
import { NatsNodes } from './nats-cluster.js';
import { freePort, memoryOf } from './ports.js';

/**
 * Every part of a deployment as its own process, each one killable and restartable in place:
 * nats-server with a file store (or a cluster of three), the inference container, two workers
 * and the gateway.
 */

const containerScript = fileURLToPath(new URL('./sleepy-echo.mjs', import.meta.url));

/** The container process, on a port that stays the same across restarts. */
class ContainerProcess {
  private child: ChildProcess | undefined;
  private constructor(readonly port: number) {}

  static async start(): Promise<ContainerProcess> {
    const container = new ContainerProcess(await freePort());
    await container.launch();
    return container;
  }

  async launch(): Promise<void> {
    const child = spawn(process.execPath, [containerScript], {
      env: { PORT: String(this.port) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    this.child = child;
    await new Promise<void>((resolve, reject) => {
      child.stdout.once('data', () => resolve());
      child.once('exit', (code) => reject(new Error(`the container exited with ${code} before listening`)));
    });
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await gone;
  }
}

/** A worker process that can be killed and started again with the same configuration. */
export class WorkerSlot {
  process: WorkerProcess;
  starts = 1;
  constructor(readonly env: Record<string, string>) {
    this.process = spawnSidecar(['worker'], env);
  }

  get pid(): number {
    return this.process.child.pid!;
  }

  /** Resolves once it pulls work; rejects as soon as it exits instead. */
  running(): Promise<unknown> {
    const { process: worker } = this;
    const running = worker.waitForLog(isState('running'), 120_000);
    const exited = worker.exit.then(({ code, signal }) => {
      throw new Error(
        `worker ${this.env.WORKER_ID} exited (${code ?? signal}) before running: ${worker.stderr().slice(-300)}`,
      );
    });
    running.catch(() => undefined);
    exited.catch(() => undefined);
    return Promise.race([running, exited]);
  }

  alive(): boolean {
    return this.process.child.exitCode === null && this.process.child.signalCode === null;
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.alive()) this.process.child.kill(signal);
    return this.process.exit;
  }

  restart(): void {
    this.starts++;
    this.process = spawnSidecar(['worker'], this.env);
  }

  /** Resident memory of the process now and at its highest since it started, in bytes (Linux). */
  memory(): Promise<{ rss: number; peak: number }> {
    return memoryOf(this.pid);
  }
}

/** The gateway as a child process, always on the same port and gateway id. */
export class GatewayProcess {
  process: WorkerProcess;
  private constructor(
    readonly port: number,
    private readonly natsUrl: string,
    private readonly env: Record<string, string>,
  ) {
    this.process = this.spawn();
  }

  static async start(natsUrl: string, env: Record<string, string> = {}): Promise<GatewayProcess> {
    const gateway = new GatewayProcess(await freePort(), natsUrl, env);
    await gateway.listening();
    return gateway;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  private spawn(): WorkerProcess {
    return spawnSidecar(
      [
        'gateway',
        '--port',
        String(this.port),
        '--gateway-id',
        this.env.GATEWAY_ID ?? 'gw-chaos',
        '--nats-url',
        this.natsUrl,
        '--log-level',
        'warn',
      ],
      this.env,
    );
  }

  memory(): Promise<{ rss: number; peak: number }> {
    return memoryOf(this.process.child.pid);
  }

  async listening(): Promise<void> {
    for (let i = 0; i < 600; i++) {
      if (this.process.child.exitCode !== null) throw new Error(`the gateway exited: ${this.process.stderr()}`);
      const up = await fetch(`${this.url}/v1/health/live`).then(
        (r) => r.ok,
        () => false,
      );
      if (up) return;
      await sleep(100);
    }
    throw new Error('the gateway did not start listening');
  }

  /** SIGTERM lets it answer its callers first; SIGKILL is a crash, with nobody left to answer. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.process.child.exitCode === null) this.process.child.kill(signal);
    return (await this.process.exit).code;
  }

  async restart(): Promise<void> {
    this.process = this.spawn();
    await this.listening();
  }
}

export interface ClusterOptions {
  /** Extra worker environment (NATS_ACK_WAIT, MAX_REQUEST_CONCURRENCY, DRAIN_GRACE…). */
  workerEnv?: Record<string, string>;
  workers?: number;
  /** nats-server processes: 1, or 3 for a JetStream cluster (streams then kept on `replicas` nodes). */
  natsNodes?: number;
  replicas?: number;
  gatewayEnv?: Record<string, string>;
}

/**
 * The replicas setting the sidecar reads (default 1, for one server). Streams that come up with
 * fewer replicas than asked are raised by the suite, and the scenario says so.
 */
const REPLICAS_ENV = 'NATS_STREAM_REPLICAS';

export interface Cluster {
  nats: NatsNodes;
  container: ContainerProcess;
  workers: WorkerSlot[];
  gateway: GatewayProcess;
  functionId: string;
  versionId: string;
  /** Streams the suite had to raise to the replica count asked for (empty when the sidecar did). */
  raisedReplicas: string[];
  dispose(): Promise<void>;
}

export async function startCluster(options: ClusterOptions = {}): Promise<Cluster> {
  const nats = await NatsNodes.start(options.natsNodes ?? 1);
  const replicas = options.replicas ?? 1;
  const replicaEnv: Record<string, string> = replicas > 1 ? { [REPLICAS_ENV]: String(replicas) } : {};
  const workers: WorkerSlot[] = [];
  let container: ContainerProcess | undefined;
  let gateway: GatewayProcess | undefined;
  const dispose = async () => {
    await Promise.all(workers.map((w) => w.kill('SIGKILL')));
    gateway?.process.child.kill('SIGKILL');
    await container?.kill();
    await nats.dispose();
  };
  try {
    container = await ContainerProcess.start();
    const functionId = randomUUID();
    const versionId = randomUUID();
    for (let i = 0; i < (options.workers ?? 2); i++) {
      const env = await workerEnv(nats.url, container.port, {
        FUNCTION_ID: functionId,
        FUNCTION_VERSION_ID: versionId,
        INFERENCE_URL: '/echo',
        WORKER_ID: `chaos-${i + 1}`,
        LOG_LEVEL: 'info',
        MAX_REQUEST_CONCURRENCY: '8',
        ...replicaEnv,
        ...options.workerEnv,
      });
      workers.push(new WorkerSlot(env));
    }
    // A loaded machine can take a while to start three TypeScript processes, and a worker whose
    // first JetStream calls time out exits; it is given one more start, as its pod would be.
    await Promise.all(
      workers.map((w) =>
        w.running().catch(async (err: unknown) => {
          if (w.alive()) throw err;
          w.restart();
          return w.running();
        }),
      ),
    );
    gateway = await GatewayProcess.start(nats.url, { ...replicaEnv, ...options.gatewayEnv });
    await waitForStatus(gateway.url, functionId, versionId, 'ACTIVE', 60_000);
    const raisedReplicas = replicas > 1 ? await nats.raiseReplicas(replicas) : [];
    if (replicas > 1) await nats.settled(replicas);
    return { nats, container, workers, gateway, functionId, versionId, raisedReplicas, dispose };
  } catch (err) {
    await dispose();
    throw err;
  }
}
