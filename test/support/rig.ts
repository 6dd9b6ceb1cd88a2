/**
 * The test rig: every part an integration or process test runs against, each optional, started
 * in dependency order and stopped by one `dispose` (last started, first stopped).
 *
 *   import { invocationFor } from './env.js';
 *   import { useRig } from './rig.js';
 *
 *   describe('a worker behind the gateway', () => {
 *     // A private nats-server and client, an echo container, one worker in this process and a
 *     // gateway that already lists the worker's function as ACTIVE.
 *     const rig = useRig({ worker: { env: { LOG_LEVEL: 'warn' } }, gateway: { awaitStatus: 'ACTIVE' } });
 *
 *     it('answers a call through the gateway', async () => {
 *       rig.container.route = (_req, res) => void res.writeHead(200).end('hi'); // echo again next test
 *       const url = `${rig.gateway.url}/v2/nvcf/pexec/functions/${rig.worker.env.FUNCTION_ID}`;
 *       expect(await (await fetch(url, { method: 'POST' })).text()).toBe('hi');
 *     });
 *
 *     it('answers a call on the work queue', async () => {
 *       const result = await rig.client.result(await rig.client.invoke(invocationFor(rig.worker.env)));
 *       expect(result.status).toBe(200);
 *     });
 *   });
 *
 * `useRig(options)` starts before the file's tests and stops after them (the container's route
 * and health go back to their first values before each test); `useRig(options, { each: true })`
 * gives each test a fresh one; `await startRig(options)` is for a single test, which disposes it.
 * What each option asks for is in rig-options.ts.
 * Parts a test adds later (`startWorker`, `spawnWorker`, `startGateway`, `startContainer`, `serve`,
 * `spawnSidecar`) are stopped by the same dispose.
 *
 * NATS: a private single-node nats-server whenever a part needs one; `nats: { url }` points every
 * part at servers someone else runs (a cluster: its URLs joined by commas, as NATS_URL takes
 * them), which the rig then neither starts nor stops. `nats: { auth: { user, password } }` starts
 * one that lets in only that user; the rig's client, workers and gateways then log in as it.
 */
import { connect, type NatsConnection } from 'nats';
import type { RequestListener } from 'node:http';
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest';
import { NatsServer } from '../../src/dev/nats-server.js';
import { TestClient } from './client.js';
import { TestContainer, echo, type Route } from './container.js';
import { startWorker, workerEnv, type RunningWorker } from './env.js';
import { startGateway, waitForStatus, type RunningGateway } from './gateway.js';
import { TestServer } from './http.js';
import { isState, spawnSidecar, type WorkerProcess } from './process.js';
import type { RigOptions, SpawnedWorker, WorkerOptions } from './rig-options.js';
import { TestStorage } from './storage.js';

const missing = (part: string): never => {
  throw new Error(`the rig has no ${part}: ask for one in its options or start one on it`);
};
const alive = (p: WorkerProcess) => p.child.exitCode === null && p.child.signalCode === null;

interface Parts {
  natsServer?: NatsServer;
  natsUrl?: string;
  /** NATS_USER and NATS_PASSWORD for a nats-server started with `auth`. */
  natsLogin?: Record<string, string>;
  nc?: NatsConnection;
  client?: TestClient;
  storage?: TestStorage;
  container?: TestContainer;
  containerPort?: number;
  /** What the rig's container started with, to give it back before each test. */
  containerStart?: { route: Route; healthStatus: number };
  worker?: RunningWorker;
  gateway?: RunningGateway;
}

export class Rig {
  private parts: Parts = {};
  private readonly cleanups: (() => unknown)[] = [];

  constructor(private readonly options: RigOptions = {}) {}

  get nats(): NatsServer {
    return this.parts.natsServer ?? missing('nats-server of its own');
  }
  get natsUrl(): string {
    return this.parts.natsUrl ?? missing('NATS');
  }
  get nc(): NatsConnection {
    return this.parts.nc ?? missing('NATS client');
  }
  get client(): TestClient {
    return this.parts.client ?? missing('NATS client');
  }
  get storage(): TestStorage {
    return this.parts.storage ?? missing('storage');
  }
  get container(): TestContainer {
    return this.parts.container ?? missing('test container');
  }
  get containerPort(): number {
    return this.parts.containerPort ?? missing('container');
  }
  /** The first worker started on the rig. */
  get worker(): RunningWorker {
    return this.parts.worker ?? missing('worker');
  }
  /** The first gateway started on the rig. */
  get gateway(): RunningGateway {
    return this.parts.gateway ?? missing('gateway');
  }

  async start(): Promise<this> {
    const o = this.options;
    try {
      if (o.nats ?? Boolean(o.worker || o.gateway || o.client)) await this.startNats(o.nats);
      if ((o.client ?? true) && this.parts.natsUrl) {
        const login = this.parts.natsLogin;
        const nc = await connect({
          ...(login && { user: login.NATS_USER, pass: login.NATS_PASSWORD }),
          ...(typeof o.client === 'object' ? o.client : {}),
          servers: this.parts.natsUrl.split(','),
        });
        Object.assign(this.parts, { nc, client: new TestClient(nc) });
        this.defer(() => nc.close());
      } else if (o.client) missing('NATS for its client');
      if (o.storage) {
        const storage = (this.parts.storage = await TestStorage.start());
        this.defer(() => storage.close());
      }
      const container = o.container ?? Boolean(o.worker);
      if (typeof container === 'object' && 'start' in container) {
        const external = await container.start();
        this.parts.containerPort = external.port;
        this.defer(() => external.close());
      } else if (container) await this.startContainer(container === true ? echo : container);
      if (o.gateway) await this.startGateway(typeof o.gateway === 'object' ? o.gateway.env : {});
      if (o.worker) await this.startWorker(typeof o.worker === 'object' ? o.worker : {});
      const { awaitStatus, apiKey } = typeof o.gateway === 'object' ? o.gateway : {};
      if (awaitStatus)
        await waitForStatus(
          this.gateway.url,
          this.worker.env.FUNCTION_ID!,
          this.worker.env.FUNCTION_VERSION_ID!,
          awaitStatus,
          20_000,
          apiKey ? { authorization: `Bearer ${apiKey}` } : {},
        );
      return this;
    } catch (err) {
      await this.dispose().catch(() => undefined);
      throw err;
    }
  }

  private async startNats(options: RigOptions['nats']): Promise<void> {
    if (typeof options === 'object' && 'url' in options) {
      this.parts.natsUrl = options.url;
      return;
    }
    const nats = await NatsServer.start(typeof options === 'object' ? options : {});
    const auth = typeof options === 'object' ? options.auth : undefined;
    Object.assign(this.parts, {
      natsServer: nats,
      natsUrl: nats.url,
      natsLogin: auth && { NATS_USER: auth.user, NATS_PASSWORD: auth.password },
    });
    this.defer(() => nats.dispose());
  }

  /** A `TestContainer`; the first one started is the rig's, which its workers call. */
  async startContainer(route: Route | { route?: Route; healthStatus?: number } = echo): Promise<TestContainer> {
    const options = typeof route === 'function' ? { route } : route;
    const container = await TestContainer.start(options.route ?? echo);
    if (options.healthStatus !== undefined) container.healthStatus = options.healthStatus;
    this.defer(() => container.close());
    if (this.parts.containerPort === undefined)
      Object.assign(this.parts, {
        container,
        containerPort: container.port,
        containerStart: { route: container.route, healthStatus: container.healthStatus },
      });
    return container;
  }

  /** Gives the rig's container back the route and health it started with. */
  resetContainer(): void {
    const { container, containerStart } = this.parts;
    if (container && containerStart) Object.assign(container, containerStart);
  }

  /** The env of a worker against the rig's NATS and container, with `extra` over the defaults. */
  workerEnv(extra: Record<string, string> = {}): Promise<Record<string, string>> {
    const port = extra.INFERENCE_PORT ? Number(extra.INFERENCE_PORT) : this.containerPort;
    return workerEnv(extra.NATS_URL ?? this.natsUrl, port, { ...this.parts.natsLogin, ...extra });
  }

  /** A worker in this process; the first one started is `rig.worker`. */
  async startWorker(options: WorkerOptions = {}): Promise<RunningWorker> {
    const worker = await startWorker(await this.workerEnv(options.env), options.waitFor ?? 'running');
    this.defer(() => worker.stop());
    this.parts.worker ??= worker;
    return worker;
  }

  /** `nvcf-sidecar worker` as a child process, SIGKILLed at dispose if it is still running. */
  async spawnWorker(options: { env?: Record<string, string>; waitFor?: 'running' } = {}): Promise<SpawnedWorker> {
    const env = await this.workerEnv(options.env);
    const worker = Object.assign(this.spawnSidecar(['worker'], env), { env });
    if (options.waitFor) await worker.waitForLog(isState(options.waitFor));
    return worker;
  }

  /** Any `nvcf-sidecar` command as a child process, SIGKILLed at dispose if it is still running. */
  spawnSidecar(args: string[], env: Record<string, string>): WorkerProcess {
    const child = spawnSidecar(args, env);
    this.defer(async () => {
      if (alive(child)) child.child.kill('SIGKILL');
      await child.exit;
    });
    return child;
  }

  /** A gateway in this process; the first one started is `rig.gateway`. */
  async startGateway(env: Record<string, string> = {}): Promise<RunningGateway> {
    const gateway = await startGateway(this.natsUrl, { ...this.parts.natsLogin, ...env });
    this.defer(() => gateway.stop());
    this.parts.gateway ??= gateway;
    return gateway;
  }

  /** A one-off HTTP peer with whatever behaviour the test needs. */
  async serve(handler: RequestListener): Promise<TestServer> {
    const server = await TestServer.start(handler);
    this.defer(() => server.close());
    return server;
  }

  /** Runs `cleanup` at dispose, before everything started until now. */
  defer(cleanup: () => unknown): void {
    this.cleanups.push(cleanup);
  }

  /** Stops everything, last started first; safe to repeat. Every part is stopped even if one fails. */
  async dispose(): Promise<void> {
    const errors: unknown[] = [];
    for (const cleanup of this.cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (err) {
        errors.push(err);
      }
    }
    this.parts = {};
    if (errors.length > 0) throw new AggregateError(errors, 'the rig did not stop cleanly');
  }
}

/** A rig started now; the caller disposes it. */
export function startRig(options: RigOptions = {}): Promise<Rig> {
  return new Rig(options).start();
}

/**
 * A rig for the tests of the enclosing describe block: started once before them (or before each
 * with `each`), disposed after. Its parts are there by the time a test runs.
 */
export function useRig(options: RigOptions = {}, { each = false }: { each?: boolean } = {}): Rig {
  const rig = new Rig(options);
  const start = async () => void (await rig.start());
  const dispose = () => rig.dispose();
  if (each) {
    beforeEach(start);
    afterEach(dispose);
  } else {
    beforeAll(start);
    afterAll(dispose);
    beforeEach(() => rig.resetContainer());
  }
  return rig;
}
