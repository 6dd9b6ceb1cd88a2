import { startCluster, type Cluster, type ClusterOptions } from './cluster.js';
import { judgeLoad, type ScenarioRow } from './judge.js';
import type { LoadOptions, LoadResult } from './load.js';

/**
 * What every failure scenario is built from: a fresh cluster of real processes for its run, the
 * load it drives through the gateway, the points of the run at which it strikes, and the row it
 * reports. The scenarios themselves are scenarios.ts (our processes fail) and nats-scenarios.ts
 * (NATS fails).
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

export function summarizeErrors(load: LoadResult): string {
  const kinds = new Map<string, number>();
  for (const r of load.requests.filter((r) => r.outcome === 'errored')) {
    const key = `${r.status} ${/"detail":"([^":]+)/.exec(r.detail ?? '')?.[1] ?? r.detail?.slice(0, 60)}`;
    kinds.set(key, (kinds.get(key) ?? 0) + 1);
  }
  return kinds.size === 0 ? 'none' : [...kinds].map(([k, n]) => `${n} × ${k}`).join('; ');
}
