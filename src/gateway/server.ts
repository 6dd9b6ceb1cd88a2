import { createServer, type Server, type ServerResponse } from 'node:http';
import { setMaxListeners } from 'node:events';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Events, type NatsConnection } from 'nats';
import { listen } from '../shared/probe-servers.js';
import { ProtocolClient } from './invocations/protocol-client.js';
import type { Logger } from '../shared/log.js';
import { connectNats, ensureResults } from '../shared/nats.js';
import { NatsLink } from '../shared/nats-link.js';
import { AssetCatalog } from './storage/asset-store.js';
import type { GatewayConfig } from './config.js';
import { cancelRequest, hasFinal } from './invocations/cancel.js';
import type { GatewayContext } from './context.js';
import { Queues } from './invocations/queues.js';
import { answerMetrics, createGatewayMetrics, trackCall } from './front/metrics.js';
import { FunctionRegistry } from './functions/registry.js';
import { DeploymentController } from './lifecycle/controller.js';
import { LifecycleStore } from './lifecycle/store.js';
import { RequestStore, abandonAfterMs } from './invocations/requests.js';
import { ResultsFloor } from './invocations/results-floor.js';
import { route } from './front/routes.js';
import { UrlSigner } from './storage/signing.js';
import { NatsBlobStore } from './storage/storage.js';
import { buckets } from '../shared/protocol.js';

/** How often abandoned requests are looked for; their threshold is at least 10 s, so this is plenty. */
const SWEEP_INTERVAL_MS = 2_000;
/** How long a stopping gateway waits for its waiting calls to be answered 202 before it cuts connections. */
const SHUTDOWN_ANSWER_MS = 5_000;
/**
 * How long, at most, a stopping gateway keeps idle kept-alive connections open, answering any call
 * that arrives on them with `Connection: close`, before it closes the ones still idle.
 */
const SHUTDOWN_LINGER_MS = 2_000;

/**
 * The NVCF-compatible invocation API over NATS. All state a client call depends on lives in
 * NATS (request records, results, objects, the URL signing secret), so the gateway can stop and
 * come back, or run as several copies, without losing a request.
 */
export class Gateway {
  private server: Server | undefined;
  private nc: NatsConnection | undefined;
  private ctx: GatewayContext | undefined;
  private sweeper: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private reconnectedAt = 0;
  private stopping: Promise<void> | undefined;
  /** Every waiting call listens to it, so it has as many listeners as calls wait; no "leak" warning. */
  private readonly shutdown = maxListenersOff(new AbortController());
  /** Calls not yet answered in full: a stopping gateway answers them before it closes their connections. */
  private readonly inFlight = new Set<ServerResponse>();
  /** Every open client connection, so a stopping gateway can tell idle ones from busy ones. */
  private readonly sockets = new Set<Socket>();
  private readonly metrics = createGatewayMetrics();
  /** A process that exits at once (second signal, uncaught error) takes the instances it started along. */
  private readonly killInstances = () => this.ctx?.lifecycle.controller.killNow();
  port = 0;

  private readonly log: Logger;

  constructor(
    private readonly config: GatewayConfig,
    log: Logger,
  ) {
    // Every line carries the gatewayId, once: a key given twice is JSON that tools read differently.
    this.log = 'gatewayId' in log.bindings() ? log : log.child({ gatewayId: config.gatewayId });
  }

  get url(): string {
    const host = this.config.host === '0.0.0.0' || this.config.host === '::' ? '127.0.0.1' : this.config.host;
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.port}`;
  }

  async start(): Promise<void> {
    const { config } = this;
    this.startedAt = Date.now();
    const nc = await connectNats(config.nats, `nvcf-gateway ${config.gatewayId}`);
    void this.watchReconnects(nc);
    this.nc = nc;
    const js = nc.jetstream();
    const jsm = await nc.jetstreamManager();
    const replicas = config.nats.replicas;
    await ensureResults(jsm, config.resultRetentionMs, replicas);
    const state = await js.views.kv(buckets.gateway, { history: 1, replicas });
    const requestsKv = await js.views.kv(buckets.requests, { history: 1, ttl: config.resultRetentionMs, replicas });
    const resultsFloor = new ResultsFloor(jsm);
    await resultsFloor.refresh();
    const ttl = { assets: config.assetTtlMs, results: config.resultRetentionMs, bodies: config.resultRetentionMs };
    const [store, assets, registry, signer, lifecycleStore] = await Promise.all([
      NatsBlobStore.open(nc, ttl, replicas),
      AssetCatalog.open(nc, config.assetTtlMs, replicas),
      FunctionRegistry.open(nc, this.log.child({ stage: 'registry' }), replicas),
      UrlSigner.fromKv(state, () => config.publicUrl ?? this.url),
      LifecycleStore.open(nc, replicas),
    ]);
    const controller = new DeploymentController(lifecycleStore, {
      gatewayId: config.gatewayId,
      nats: config.nats,
      workerLogLevel: 'info',
      log: this.log.child({ stage: 'deployments' }),
    });
    process.once('exit', this.killInstances);
    this.ctx = {
      config,
      nc,
      link: new NatsLink(nc),
      jsm,
      client: new ProtocolClient(nc),
      requests: new RequestStore(requestsKv),
      resultsFloor,
      registry,
      queues: new Queues(jsm),
      store,
      assets,
      signer,
      log: this.log.child({ stage: 'api' }),
      unrecorded: new Map(),
      waiting: new Map(),
      ensuredQueues: new Set(),
      lifecycle: { store: lifecycleStore, controller },
      shutdown: this.shutdown.signal,
    };
    const ctx = this.ctx;
    this.server = createServer(
      {
        // Headers must arrive in time, so a client trickling them cannot hold a connection for
        // ever; bodies are bounded by an idle timer instead (front/routes.ts), since a large upload may
        // rightly take long. No whole-request timeout: Node would not apply it to long polls and
        // event streams anyway (the request is complete by then), but it would cut big uploads.
        headersTimeout: config.headersTimeoutMs,
        requestTimeout: 0,
        connectionsCheckingInterval: 1_000,
      },
      (req, res) => {
        this.inFlight.add(res);
        res.once('close', () => this.inFlight.delete(res));
        if (this.stopping) res.setHeader('Connection', 'close');
        trackCall(this.metrics, req, res);
        if (!answerMetrics(this.metrics, req, res)) void route(ctx, req, res);
      },
    );
    this.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.port = await listen(this.server, config.port, config.host);
    this.sweeper = setInterval(() => void this.sweep(), SWEEP_INTERVAL_MS);
    this.sweeper.unref();
    // Instances need the API up (workers fetch assets and upload results through it).
    await controller
      .resume()
      .catch((err: Error) =>
        this.log.error({ err: err.message }, 'could not resume the deployments this gateway runs; redeploy them'),
      );
    this.log.info(
      { url: this.url, apiClients: config.apiClients.length, nats: config.nats.servers },
      'gateway listening',
    );
  }

  /**
   * Cancels this gateway's requests that nobody has polled for max(2 × window, 10 s). Time the
   * gateway was down does not count: clients could not poll then.
   */
  private async sweep(): Promise<void> {
    const ctx = this.ctx;
    if (!ctx || this.stopping) return;
    try {
      const now = Date.now();
      for await (const record of ctx.requests.all()) {
        if (record.gatewayId !== this.config.gatewayId || ctx.waiting.has(record.requestId)) continue;
        // A result being handed out is not abandoned (its client may still be reading it from a
        // gateway that died mid-answer).
        if ((record.deliveringUntil ?? 0) > now) continue;
        // Neither the gateway's own downtime nor a NATS outage counts: polls failed or were not recorded then.
        const idleSince = Math.max(record.lastSeenAt, this.startedAt, this.reconnectedAt);
        if (now - idleSince <= abandonAfterMs(record.pollSeconds)) continue;
        // A finished request has nothing left to stop: cancelling it would only throw away an
        // answer its client may still fetch. RESULT_RETENTION bounds how long it is kept.
        if (await hasFinal(ctx, record)) continue;
        await cancelRequest(ctx, record, 'nobody polled for the result');
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'sweeping abandoned requests failed');
    }
  }

  private async watchReconnects(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) if (status.type === Events.Reconnect) this.reconnectedAt = Date.now();
  }

  /** Open connections with no call on them: a client may send its next call on one at any moment. */
  private idleSockets(): number {
    const busy = new Set<unknown>();
    for (const res of this.inFlight) busy.add(res.socket);
    let idle = 0;
    for (const socket of this.sockets) if (!busy.has(socket)) idle++;
    return idle;
  }

  /** Resolves once the instances of the versions undeployed through the API have drained and stopped. */
  async undeployed(): Promise<void> {
    await this.ctx?.lifecycle.controller.undeployed();
  }

  /** Closes the API and NATS; requests in flight stay in NATS for the next start. Safe to repeat. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearInterval(this.sweeper);
      // Instances drain first, while the API they upload results through still answers.
      await this.ctx?.lifecycle.controller.stop();
      this.ctx?.registry.stop();
      // A caller still inside its first pexec call has no request id yet: dropping its
      // connection would orphan the request. So every call is answered (a waiting one 202 at
      // once) on a connection that then closes. Closing an idle kept-alive connection can cross a
      // call the client has just sent on it (reset before the gateway reads it, so the caller
      // cannot tell whether it was queued); so idle connections stay open a while, and a call
      // arriving on one is answered with `Connection: close`, until none is idle or
      // SHUTDOWN_LINGER_MS has passed. Only calls running past SHUTDOWN_ANSWER_MS (event
      // streams) are cut.
      for (const res of this.inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
      this.shutdown.abort();
      for (let waited = 0; this.idleSockets() > 0 && waited < SHUTDOWN_LINGER_MS; waited += 20) await sleep(20);
      const server = this.server;
      const closed = server?.listening
        ? new Promise<void>((resolve) => server.close(() => resolve()))
        : Promise.resolve();
      for (let waited = 0; this.inFlight.size > 0 && waited < SHUTDOWN_ANSWER_MS; waited += 20) await sleep(20);
      server?.closeAllConnections();
      await closed;
      await this.nc?.drain().catch(() => undefined);
      process.off('exit', this.killInstances);
      this.log.info('gateway stopped');
    })();
    return this.stopping;
  }
}

function maxListenersOff(controller: AbortController): AbortController {
  setMaxListeners(0, controller.signal);
  return controller;
}
