import { setTimeout as sleep } from 'node:timers/promises';
import { streams } from '../../src/shared/protocol.js';
import { startCluster, type Cluster, type ClusterOptions } from './cluster.js';
import { judgeLoad, type ScenarioRow } from './judge.js';
import { runLoad, type LoadOptions, type LoadResult } from './load.js';

export type { ScenarioRow } from './judge.js';

/**
 * The failure scenarios, each against a fresh cluster of real processes. A scenario drives
 * load through the gateway and strikes at set points of the run; it reports what clients saw.
 */

export interface ScenarioSize {
  /** Requests per scenario. */
  n: number;
  concurrency: number;
  /** How long the gateway stays away in the gateway scenario. */
  gatewayAwayMs: number;
  /** Time between worker kills in the crash scenario. */
  killEveryMs: number;
  /** How long NATS stays away in the long-outage scenario (longer than a client's poll window). */
  natsOutageMs: number;
}

const LOAD = { pollSeconds: 5, sleepMs: [20, 200] as [number, number], giveUpMs: 180_000 };

/** Resolves when `done` reaches each fraction of n, in order. */
export function milestones(n: number) {
  const waiting: { at: number; resolve: () => void }[] = [];
  return {
    at(fraction: number): Promise<void> {
      return new Promise((resolve) => waiting.push({ at: Math.max(1, Math.floor(n * fraction)), resolve }));
    },
    finished(done: number): void {
      for (const w of waiting.filter((w) => done >= w.at)) {
        w.resolve();
        waiting.splice(waiting.indexOf(w), 1);
      }
    },
  };
}

export async function withCluster<T>(options: ClusterOptions, body: (cluster: Cluster) => Promise<T>): Promise<T> {
  const cluster = await startCluster(options);
  try {
    return await body(cluster);
  } finally {
    await cluster.dispose();
  }
}

export function row(scenario: string, cluster: Cluster, load: LoadResult, notes: string[]): Promise<ScenarioRow> {
  return judgeLoad(scenario, cluster.nats.url, load, notes);
}

export function loadOptions(cluster: Cluster, size: ScenarioSize, extra: Partial<LoadOptions> = {}): LoadOptions {
  return {
    gatewayUrl: cluster.gateway.url,
    functionId: cluster.functionId,
    versionId: cluster.versionId,
    count: size.n,
    concurrency: size.concurrency,
    ...LOAD,
    ...extra,
  };
}

/** 1. SIGKILL one of the two workers every few seconds (alternating), restarting it at once. */
export function workerCrash(size: ScenarioSize): Promise<ScenarioRow> {
  return withCluster({ workerEnv: { NATS_ACK_WAIT: '2s' } }, async (cluster) => {
    let running = true;
    let kills = 0;
    const killer = (async () => {
      for (let i = 0; running; i++) {
        await sleep(size.killEveryMs);
        if (!running) break;
        const slot = cluster.workers[i % cluster.workers.length]!;
        await slot.kill('SIGKILL');
        kills++;
        slot.restart();
        await slot.running().catch(() => undefined);
      }
    })();
    const load = await runLoad(loadOptions(cluster, size));
    running = false;
    await killer;
    return row('worker crash (SIGKILL)', cluster, load, [`${kills} SIGKILLs, ack wait 2 s`]);
  });
}

/** 2. nats-server stopped for 2 s and started again on the same port and store, twice. */
export function natsRestart(size: ScenarioSize): Promise<ScenarioRow> {
  return withCluster({}, async (cluster) => {
    const marks = milestones(size.n);
    const restarts = (async () => {
      for (const fraction of [0.33, 0.66]) {
        await marks.at(fraction);
        await cluster.nats.stop();
        await sleep(2_000);
        await cluster.nats.restart();
      }
    })();
    const load = await runLoad(loadOptions(cluster, size, { onFinished: marks.finished }));
    await restarts;
    return row('NATS restart', cluster, load, ['stopped 2 s and restarted at 1/3 and 2/3 of the run']);
  });
}

/** 3. The container SIGKILLed mid-load and started again 3 s later. */
export function containerCrash(size: ScenarioSize): Promise<ScenarioRow> {
  return withCluster({}, async (cluster) => {
    const marks = milestones(size.n);
    const crash = (async () => {
      await marks.at(0.4);
      await cluster.container.kill('SIGKILL');
      await sleep(3_000);
      await cluster.container.launch();
    })();
    const load = await runLoad(loadOptions(cluster, size, { onFinished: marks.finished }));
    await crash;
    const paused = cluster.workers.map((w) => {
      const states = w.process.lines.filter((l) => l.msg === 'worker state').map((l) => String(l.to));
      return states.includes('unhealthy') && states.lastIndexOf('running') > states.indexOf('unhealthy');
    });
    const r = await row('container crash', cluster, load, [
      `SIGKILL at 40 %, back after 3 s; intake paused and resumed on ${paused.filter(Boolean).length} of ${paused.length} workers`,
      `errors seen: ${summarizeErrors(load)}`,
    ]);
    if (paused.some((p) => !p)) r.failures.push('a worker did not pause and resume intake');
    return r;
  });
}

/** 4. The gateway stopped (SIGTERM) while requests run, and started again later. */
export function gatewayAway(size: ScenarioSize): Promise<ScenarioRow> {
  return withCluster({}, async (cluster) => {
    const marks = milestones(size.n);
    let outstanding = 0;
    const away = (async () => {
      await marks.at(0.5);
      await cluster.gateway.stop();
      outstanding = size.concurrency;
      await sleep(size.gatewayAwayMs);
      await cluster.gateway.restart();
    })();
    const load = await runLoad(loadOptions(cluster, size, { onFinished: marks.finished }));
    await away;
    const r = await row('gateway away', cluster, load, [
      `stopped for ${size.gatewayAwayMs / 1000} s at 50 % with ${outstanding} requests outstanding`,
    ]);
    // A stopping gateway answers every call it has read, so none it queued is left without its
    // id. A call sent on a kept-alive connection just as the gateway closes it is reset before
    // the gateway reads it: nothing was queued (NVCF_RS shows it never ran), so, like a refused
    // connection, it is the client's to send again. Only an orphan whose request ran is a loss.
    return { ...r, orphansExpected: r.orphanedRan === 0 };
  });
}

/**
 * 6. NATS away for longer than a client's poll window (20 s at full size) while requests are in
 * flight: waiting callers must be told 202 with their id, never that a request failed.
 */
export function natsOutage(size: ScenarioSize): Promise<ScenarioRow> {
  return withCluster({}, async (cluster) => {
    const marks = milestones(size.n);
    let inFlight = 0;
    const outage = (async () => {
      await marks.at(0.5);
      inFlight = size.concurrency;
      await cluster.nats.stop();
      await sleep(size.natsOutageMs);
      await cluster.nats.restart();
    })();
    const load = await runLoad(loadOptions(cluster, size, { onFinished: marks.finished, sleepMs: [200, 2_000] }));
    await outage;
    return row(`NATS outage ${size.natsOutageMs / 1000} s`, cluster, load, [
      `stopped for ${size.natsOutageMs / 1000} s at 50 % with ${inFlight} requests in flight, then restarted on the same port and store`,
    ]);
  });
}

/**
 * 7. The gateway killed (SIGKILL) with calls waiting for results, calls whose body is still
 * arriving, and calls reading a large answer slowly; back on the same port 3 s later. A call cut
 * before it learnt its request id is orphaned: no server can answer after its death, so those
 * are counted and explained, not failed. Everything else must be answered once.
 */
export function gatewayKill(size: ScenarioSize): Promise<ScenarioRow> {
  return withCluster({}, async (cluster) => {
    const marks = milestones(size.n);
    const live = { slowReading: 0 };
    let midBody = 0;
    const kill = (async () => {
      await marks.at(0.5);
      // Strike while at least one client is in the middle of a large answer.
      for (let i = 0; i < 200 && live.slowReading === 0; i++) await sleep(100);
      midBody = live.slowReading;
      await cluster.gateway.stop('SIGKILL');
      await sleep(3_000);
      await cluster.gateway.restart();
    })();
    const load = await runLoad(
      loadOptions(cluster, size, {
        onFinished: marks.finished,
        sleepMs: [500, 4_000],
        slowBodyShare: 0.25,
        slowReadShare: 0.1,
        bigCopies: 60_000,
        live,
      }),
    );
    await kill;
    const r = await row('gateway kill -9', cluster, load, [
      `SIGKILL at 50 % with calls waiting, uploading (a quarter send their body in two halves) and reading 4 MB answers slowly (a tenth; ${midBody} mid-answer when it died); back after 3 s`,
    ]);
    return { ...r, orphansExpected: true };
  });
}

/**
 * 8. A three-node JetStream cluster, streams on three replicas: the node leading the results
 * stream is killed (SIGKILL) at 1/3 and restarted 5 s later, then the one leading the work queue
 * at 2/3. Nothing may be lost or answered twice.
 */
export function natsNodeKill(size: ScenarioSize): Promise<ScenarioRow> {
  return withCluster({ natsNodes: 3, replicas: 3 }, async (cluster) => {
    const marks = milestones(size.n);
    const killed: string[] = [];
    const kills = (async () => {
      for (const [fraction, stream] of [
        [0.33, streams.results],
        [0.66, streams.work(cluster.versionId)],
      ] as const) {
        await marks.at(fraction);
        const leader = (await cluster.nats.leaderOf(stream)) ?? 0;
        await cluster.nats.stop(leader, 'SIGKILL');
        killed.push(`chaos-${leader + 1} (leading ${stream.startsWith('NVCF_RQ') ? 'the work queue' : stream})`);
        await sleep(5_000);
        await cluster.nats.restart(leader);
      }
    })();
    const load = await runLoad(loadOptions(cluster, size, { onFinished: marks.finished }));
    await kills.catch((err: Error) => killed.push(`(a kill failed: ${err.message})`));
    const replicas = await cluster.nats.replicas().catch(() => ({}));
    const below = Object.entries(replicas).filter(([, n]) => n < 3);
    return row('NATS cluster node kill -9', cluster, load, [
      `3 nodes; killed ${killed.join(', then ')}; each back after 5 s`,
      cluster.raisedReplicas.length > 0
        ? `the suite raised ${cluster.raisedReplicas.length} streams to 3 replicas (the sidecar created them with fewer): ${cluster.raisedReplicas.join(', ')}`
        : 'every stream created with 3 replicas by the sidecar',
      ...(below.length > 0
        ? [`streams below 3 replicas at the end: ${below.map(([n, r]) => `${n} (${r})`).join(', ')}`]
        : []),
    ]);
  });
}

export interface DrainRow extends ScenarioRow {
  drains: { worker: string; exitCode: number | null; finished: number; returned: number; aborted: number }[];
}

/** 5. SIGTERM to each busy worker in turn; each is started again after it exits. */
export function drain(size: ScenarioSize): Promise<DrainRow> {
  return withCluster({ workerEnv: { NATS_ACK_WAIT: '30s' } }, async (cluster) => {
    const marks = milestones(size.n);
    const drains: DrainRow['drains'] = [];
    const terms = (async () => {
      for (const [i, fraction] of [0.33, 0.66].entries()) {
        await marks.at(fraction);
        const slot = cluster.workers[i]!;
        const exit = await slot.kill('SIGTERM');
        const report = slot.process.lines.find((l) => l.msg === 'drained; exiting') ?? {};
        drains.push({
          worker: String(slot.env.WORKER_ID),
          exitCode: exit.code,
          finished: Number(report.finished ?? NaN),
          returned: Number(report.returned ?? NaN),
          aborted: Number(report.aborted ?? NaN),
        });
        slot.restart();
      }
    })();
    const load = await runLoad(loadOptions(cluster, size, { onFinished: marks.finished, sleepMs: [100, 600] }));
    await terms;
    const r = await row(
      'drain (SIGTERM)',
      cluster,
      load,
      drains.map(
        (d) => `${d.worker}: exit ${d.exitCode}, finished ${d.finished}, returned ${d.returned}, aborted ${d.aborted}`,
      ),
    );
    return { ...r, drains };
  });
}

function summarizeErrors(load: LoadResult): string {
  const kinds = new Map<string, number>();
  for (const r of load.requests.filter((r) => r.outcome === 'errored')) {
    const key = `${r.status} ${/"detail":"([^":]+)/.exec(r.detail ?? '')?.[1] ?? r.detail?.slice(0, 60)}`;
    kinds.set(key, (kinds.get(key) ?? 0) + 1);
  }
  return kinds.size === 0 ? 'none' : [...kinds].map(([k, n]) => `${n} × ${k}`).join('; ');
}
