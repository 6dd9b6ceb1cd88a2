import { summarize, type LatencySummary } from './stats.js';

export interface LoadResult extends LatencySummary {
  concurrency: number;
  seconds: number;
  rps: number;
  errors: number;
  firstError?: string;
}

/**
 * Closed-loop load: `concurrency` callers, each starting its next call as soon as the last one
 * ends, for `durationMs`. A short warm-up (not counted) fills pools and JIT caches first.
 */
export async function closedLoop(
  call: () => Promise<void>,
  concurrency: number,
  durationMs: number,
  warmupMs = Math.min(1_000, durationMs / 5),
): Promise<LoadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let counting = false;
  let stopAt = 0;
  const caller = async () => {
    while (performance.now() < stopAt) {
      const started = performance.now();
      try {
        await call();
        if (counting) latencies.push(performance.now() - started);
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
        if (errors > 1_000) throw new Error(`too many errors; first: ${firstError}`);
      }
    }
  };
  stopAt = performance.now() + warmupMs;
  await Promise.all(Array.from({ length: concurrency }, caller));
  counting = true;
  const began = performance.now();
  stopAt = began + durationMs;
  await Promise.all(Array.from({ length: concurrency }, caller));
  const seconds = (performance.now() - began) / 1000;
  return {
    concurrency,
    seconds,
    rps: latencies.length / seconds,
    errors,
    ...(firstError ? { firstError } : {}),
    ...summarize(latencies),
  };
}
