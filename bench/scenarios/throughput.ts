import { Pool } from 'undici';
import { closedLoop, type LoadResult } from '../lib/load.js';
import { NatsCaller } from '../lib/nats-load.js';
import { cpuSeconds, RssSampler } from '../lib/processes.js';
import { median, medianLoad } from '../lib/rounds.js';
import type { Rig } from '../lib/setup.js';

interface ThroughputRow {
  concurrency: number;
  /** Medians over the rounds (see bench/lib/rounds.ts). */
  worker: LoadResult;
  bare: LoadResult;
  direct: LoadResult;
  /** Median of the per-round req/s ratios: worker over bare forwarder (a/b), over direct (a/c). */
  ratioAB: number;
  ratioAC: number;
  /** Every round's a/b, to show the spread. */
  roundRatiosAB: number[];
  /** Median CPU milliseconds the worker (a) and the forwarder (b) spent per request. */
  workerCpuMsPerRequest: number;
  bareCpuMsPerRequest: number;
}

export interface ThroughputResult {
  rounds: number;
  rows: ThroughputRow[];
  /** Peak RSS of the worker while it ran at the highest concurrency. */
  workerPeakRssMiB: number;
}

/** A 256-byte JSON body, LLM-request sized. */
export const PAYLOAD = Buffer.from(JSON.stringify({ prompt: 'x'.repeat(230), max_tokens: 16 }).padEnd(256, ' '));

interface Measured {
  load: LoadResult;
  cpuMsPerRequest: number;
}

/** One closed-loop run, with the CPU the process `pid` spent per counted request. */
async function measure(pid: number, call: () => Promise<void>, concurrency: number, durationMs: number) {
  const cpu = cpuSeconds(pid);
  const load = await closedLoop(call, concurrency, durationMs);
  // Warm-up calls are not in the counts but are in the CPU: an estimate, slightly high.
  const cpuMsPerRequest = ((cpuSeconds(pid) - cpu) * 1000) / (load.count * (1 + 1_000 / durationMs));
  return { load, cpuMsPerRequest } satisfies Measured;
}

/**
 * Scenario 1: the same closed-loop load, at each concurrency, against (a) the real worker through
 * NATS, (b) the bare forwarder through NATS, (c) the container directly. At each level (a) and (b)
 * alternate for `rounds` rounds of `durationMs` each, then (c) runs once; the row keeps medians.
 */
export async function throughput(
  rig: Rig,
  levels: number[],
  durationMs: number,
  rounds: number,
): Promise<ThroughputResult> {
  const caller = await NatsCaller.connect(rig.nats.url);
  const rows: ThroughputRow[] = [];
  let workerPeakRssMiB = 0;
  const viaNats = (fn: Rig['workerFn'], who: string) => async () => {
    const { meta } = await caller.invoke(fn.functionId, fn.functionVersionId, { body: PAYLOAD });
    if (meta.kind !== 'final' || meta.status !== 200) throw new Error(`${who} answered ${JSON.stringify(meta)}`);
  };
  try {
    for (const concurrency of levels) {
      const workers: Measured[] = [];
      const bares: Measured[] = [];
      const sampler = new RssSampler(rig.worker.pid, 100);
      for (let round = 0; round < rounds; round++) {
        workers.push(await measure(rig.worker.pid, viaNats(rig.workerFn, 'worker'), concurrency, durationMs));
        bares.push(await measure(rig.forwarder.pid, viaNats(rig.bareFn, 'forwarder'), concurrency, durationMs));
      }
      const peak = sampler.stop();
      if (concurrency === Math.max(...levels)) workerPeakRssMiB = peak;
      const pool = new Pool(rig.containerOrigin, { connections: concurrency });
      const direct = await closedLoop(
        async () => {
          const answer = await pool.request({
            method: 'POST',
            path: '/echo',
            headers: { 'content-type': 'application/json' },
            body: PAYLOAD,
          });
          await answer.body.arrayBuffer();
          if (answer.statusCode !== 200) throw new Error(`container answered ${answer.statusCode}`);
        },
        concurrency,
        durationMs,
      );
      await pool.close();
      const worker = medianLoad(workers.map((m) => m.load));
      const roundRatiosAB = workers.map((w, i) => w.load.rps / bares[i]!.load.rps);
      rows.push({
        concurrency,
        worker,
        bare: medianLoad(bares.map((m) => m.load)),
        direct,
        ratioAB: median(roundRatiosAB),
        ratioAC: worker.rps / direct.rps,
        roundRatiosAB,
        workerCpuMsPerRequest: median(workers.map((m) => m.cpuMsPerRequest)),
        bareCpuMsPerRequest: median(bares.map((m) => m.cpuMsPerRequest)),
      });
    }
  } finally {
    await caller.close();
  }
  return { rounds, rows, workerPeakRssMiB };
}
