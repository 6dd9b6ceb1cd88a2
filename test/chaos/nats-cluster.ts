import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'nats';
import { NatsServer } from '../../src/dev/nats-server.js';
import { freePort, memoryOf } from './ports.js';

/**
 * NATS as the chaos scenarios use it: one server, or a JetStream cluster of nats-server
 * processes on loopback (each with its own route port and store, all routed to each other),
 * each node killable and restartable in place. Every node serves its monitoring endpoints, so a
 * scenario can count consumers and read the server's memory.
 */
export class NatsNodes {
  private constructor(
    readonly nodes: NatsServer[],
    private readonly root: string,
  ) {}

  static async start(count = 1): Promise<NatsNodes> {
    const root = await mkdtemp(join(tmpdir(), 'nvcf-chaos-nats-'));
    const ports = await Promise.all(
      Array.from({ length: count }, async () => ({
        client: await freePort(),
        route: await freePort(),
        monitor: await freePort(),
      })),
    );
    const routes = ports.map((p) => `nats://127.0.0.1:${p.route}`);
    const nodes = await Promise.all(
      ports.map((p, i) =>
        NatsServer.start({
          port: p.client,
          monitorPort: p.monitor,
          storeDir: join(root, `node-${i + 1}`),
          ...(count > 1 ? { serverName: `chaos-${i + 1}`, cluster: { name: 'chaos', port: p.route, routes } } : {}),
        }),
      ),
    );
    const cluster = new NatsNodes(nodes, root);
    if (count > 1) await cluster.waitForJetStream();
    return cluster;
  }

  /** What a worker or gateway is given as NATS_URL: every node, comma-separated. */
  get url(): string {
    return this.nodes.map((n) => n.url).join(',');
  }

  get size(): number {
    return this.nodes.length;
  }

  /** A cluster's JetStream answers only once its nodes have elected a meta leader and can place streams. */
  async waitForJetStream(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const nc = await connect({ servers: this.url.split(',') }).catch(() => undefined);
      try {
        if (nc) {
          // A replicated stream created and deleted: the meta leader is elected and answering.
          const jsm = await nc.jetstreamManager({ timeout: 10_000 });
          await jsm.streams.add({ name: 'CHAOS_PROBE', subjects: ['chaos.probe'], num_replicas: this.size });
          await jsm.streams.delete('CHAOS_PROBE');
          return;
        }
      } catch {
        // no meta leader yet
      } finally {
        await nc?.close();
      }
      if (Date.now() > deadline) throw new Error('the NATS cluster elected no JetStream leader');
      await sleep(250);
    }
  }

  /** The node that leads a stream's replica group now, by its index in `nodes`. */
  async leaderOf(stream: string): Promise<number | undefined> {
    const nc = await connect({ servers: this.url.split(',') });
    try {
      const info = await (await nc.jetstreamManager()).streams.info(stream);
      const index = Number(/chaos-(\d+)/.exec(info.cluster?.leader ?? '')?.[1]) - 1;
      return Number.isInteger(index) ? index : undefined;
    } catch {
      // No leader right now (an election under way): the caller picks a node itself.
      return undefined;
    } finally {
      await nc.close();
    }
  }

  /** Each stream's name and replica count, as the servers report them. */
  async replicas(): Promise<Record<string, number>> {
    const nc = await connect({ servers: this.url.split(',') });
    try {
      const out: Record<string, number> = {};
      for await (const info of (await nc.jetstreamManager()).streams.list())
        out[info.config.name] = info.config.num_replicas;
      return out;
    } finally {
      await nc.close();
    }
  }

  /**
   * Streams on this cluster below `replicas` are raised to it. An operator may do this by hand;
   * the scenarios do it only when the sidecar has no replicas setting of its own to ask for it.
   */
  async raiseReplicas(replicas: number): Promise<string[]> {
    const nc = await connect({ servers: this.url.split(',') });
    const raised: string[] = [];
    try {
      const jsm = await nc.jetstreamManager();
      for await (const info of jsm.streams.list()) {
        if (info.config.num_replicas >= replicas) continue;
        await jsm.streams.update(info.config.name, { ...info.config, num_replicas: replicas });
        raised.push(info.config.name);
      }
    } finally {
      await nc.close();
    }
    return raised;
  }

  /**
   * Waits until every stream has a leader and `replicas - 1` followers that are current: until
   * then, a stream just raised (or a node just back) may refuse publishes.
   */
  async settled(replicas: number, timeoutMs = 60_000): Promise<void> {
    const nc = await connect({ servers: this.url.split(',') });
    try {
      const jsm = await nc.jetstreamManager();
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const behind: string[] = [];
        for await (const info of jsm.streams.list()) {
          const followers = info.cluster?.replicas ?? [];
          if (!info.cluster?.leader || followers.length < replicas - 1 || followers.some((r) => !r.current))
            behind.push(info.config.name);
        }
        if (behind.length === 0) return;
        if (Date.now() > deadline) throw new Error(`streams without a full replica set: ${behind.join(', ')}`);
        await sleep(250);
      }
    } finally {
      await nc.close();
    }
  }

  /** Consumers on a stream, as its leader reports them (ordered and ephemeral ones included). */
  async consumerCount(stream: string): Promise<number> {
    const nc = await connect({ servers: this.url.split(',') });
    try {
      const info = await (await nc.jetstreamManager()).streams.info(stream);
      return info.state.consumer_count;
    } finally {
      await nc.close();
    }
  }

  /** Resident memory of every node, in bytes. */
  async rss(): Promise<number[]> {
    return Promise.all(this.nodes.map(async (n) => (await memoryOf(n.pid)).rss));
  }

  /** Stops one node (`SIGKILL` for a crash), or every node; stores are kept for `restart`. */
  async stop(index?: number, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const chosen = index === undefined ? this.nodes : [this.nodes[index]!];
    await Promise.all(chosen.map((n) => n.stop(signal)));
  }

  async restart(index?: number): Promise<void> {
    const chosen = index === undefined ? this.nodes : [this.nodes[index]!];
    await Promise.all(chosen.map((n) => n.restart()));
  }

  async dispose(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.dispose()));
    await rm(this.root, { recursive: true, force: true });
  }
}
