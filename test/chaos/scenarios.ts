import { setTimeout as sleep } from 'node:timers/promises';
import { startCluster, type Cluster, type ClusterOptions } from './cluster.js';
import { duplicatedFinals, finalsPerRequest, runLoad, type LoadOptions, type LoadResult } from './load.js';

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
}

export interface ScenarioRow {
  scenario: string;
  requests: number;
  ok: number;
  errored: number;
  lost: number;
  duplicated: number;
  maxLatencyMs: number;
  elapsedMs: number;
  notes: string[];
  /** Up to five examples of each failure, for the log. */
  failures: string[];
}

const LOAD = { pollSeconds: 5, sleepMs: [20, 200] as [number, number], giveUpMs: 180_000 };

/** Resolves when `done` reaches each fraction of n, in order. */
function milestones(n: number) {
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

async function withCluster<T>(options: ClusterOptions, body: (cluster: Cluster) => Promise<T>): Promise<T> {
  const cluster = await startCluster(options);
  try {
    return await body(cluster);
  } finally {
    await cluster.dispose();
  }
}

async function row(scenario: string, cluster: Cluster, load: LoadResult, notes: string[]): Promise<ScenarioRow> {
  const finals = await finalsPerRequest(cluster.nats.url);
  const wrong = load.counts.wrong;
  const kinds = new Map<string, { count: number; example: string }>();
  for (const r of load.requests.filter((r) => r.outcome !== 'ok')) {
    const key = `${r.outcome ?? 'lost'} ${r.status ?? ''} ${(/"detail":"([^"]{0,80})/.exec(r.detail ?? '')?.[1] ?? r.detail ?? '').replace(/[0-9a-f-]{36}/g, '<id>').slice(0, 100)}`;
    const kind = kinds.get(key) ?? { count: 0, example: r.requestId ?? '(no id)' };
    kind.count++;
    kinds.set(key, kind);
  }
  const failures = [...kinds].map(([key, k]) => `${k.count} × ${key} (e.g. ${k.example})`);
  return {
    scenario,
    requests: load.requests.length,
    ok: load.counts.ok,
    errored: load.counts.errored,
    lost: load.counts.lost,
    duplicated: wrong + duplicatedFinals(finals),
    maxLatencyMs: load.maxLatencyMs,
    elapsedMs: load.elapsedMs,
    notes,
    failures,
  };
}

function loadOptions(cluster: Cluster, size: ScenarioSize, extra: Partial<LoadOptions> = {}): LoadOptions {
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
    return row('gateway away', cluster, load, [
      `stopped for ${size.gatewayAwayMs / 1000} s at 50 % with ${outstanding} requests outstanding`,
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
