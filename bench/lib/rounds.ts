import type { LoadResult } from './load.js';

/**
 * This machine is shared and noisy: one burst of someone else's load during a 10 s run decides a
 * figure. So each comparison runs as rounds, the systems alternating (a, b, a, b …), and the
 * report keeps the median of each figure and of the per-round ratio.
 */
export function roundsFromEnv(quick: boolean): number {
  const fromEnv = Number(process.env.BENCH_ROUNDS);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : quick ? 1 : 5;
}

export function median(values: number[]): number {
  const finite = values.filter((v) => Number.isFinite(v)).sort((x, y) => x - y);
  if (finite.length === 0) return NaN;
  const mid = finite.length >> 1;
  return finite.length % 2 ? finite[mid]! : (finite[mid - 1]! + finite[mid]!) / 2;
}

/** Field-wise medians of several runs of one system; counts and errors add up. */
export function medianLoad(runs: LoadResult[]): LoadResult {
  const pick = (f: (r: LoadResult) => number) => median(runs.map(f));
  const errors = runs.reduce((sum, r) => sum + r.errors, 0);
  const firstError = runs.find((r) => r.firstError)?.firstError;
  return {
    concurrency: runs[0]?.concurrency ?? 0,
    seconds: runs.reduce((sum, r) => sum + r.seconds, 0),
    rps: pick((r) => r.rps),
    errors,
    ...(firstError ? { firstError } : {}),
    count: runs.reduce((sum, r) => sum + r.count, 0),
    p50: pick((r) => r.p50),
    p99: pick((r) => r.p99),
    mean: pick((r) => r.mean),
    max: Math.max(...runs.map((r) => r.max)),
  };
}
