import { Pool } from 'undici';
import { closedLoop, type LoadResult } from '../lib/load.js';
import { NatsCaller } from '../lib/nats-load.js';
import { cpuSeconds, RssSampler } from '../lib/processes.js';
import type { Rig } from '../lib/setup.js';

export interface ThroughputRow {
  concurrency: number;
  worker: LoadResult;
  bare: LoadResult;
  direct: LoadResult;
  /** req/s of the real worker over the bare forwarder (a/b) and over direct calls (a/c). */
  ratioAB: number;
  ratioAC: number;
  /** CPU milliseconds the worker (a) and the forwarder (b) spent per request. */
  workerCpuMsPerRequest: number;
  bareCpuMsPerRequest: number;
}

export interface ThroughputResult {
  rows: ThroughputRow[];
  /** Peak RSS of the worker while it ran at the highest concurrency. */
  workerPeakRssMiB: number;
}

/** A 256-byte JSON body, LLM-request sized. */
export const PAYLOAD = Buffer.from(JSON.stringify({ prompt: 'x'.repeat(230), max_tokens: 16 }).padEnd(256, ' '));

/**
 * Scenario 1: the same closed-loop load, at each concurrency, against (a) the real worker through
 * NATS, (b) the bare forwarder through NATS, (c) the container directly. The three run back to back
 * at each level, so drift of this shared machine hits them alike.
 */
export async function throughput(rig: Rig, levels: number[], durationMs: number): Promise<ThroughputResult> {
  const caller = await NatsCaller.connect(rig.nats.url);
  const rows: ThroughputRow[] = [];
  let workerPeakRssMiB = 0;
  try {
    for (const concurrency of levels) {
      const sampler = new RssSampler(rig.worker.pid, 100);
      let cpu = cpuSeconds(rig.worker.pid);
      const worker = await closedLoop(
        async () => {
          const { meta } = await caller.invoke(rig.workerFn.functionId, rig.workerFn.functionVersionId, {
            body: PAYLOAD,
          });
          if (meta.kind !== 'final' || meta.status !== 200) throw new Error(`worker answered ${JSON.stringify(meta)}`);
        },
        concurrency,
        durationMs,
      );
      const workerCpu = cpuSeconds(rig.worker.pid) - cpu;
      const peak = sampler.stop();
      cpu = cpuSeconds(rig.forwarder.pid);
      if (concurrency === Math.max(...levels)) workerPeakRssMiB = peak;
      const bare = await closedLoop(
        async () => {
          const { meta } = await caller.invoke(rig.bareFn.functionId, rig.bareFn.functionVersionId, { body: PAYLOAD });
          if (meta.kind !== 'final' || meta.status !== 200)
            throw new Error(`forwarder answered ${JSON.stringify(meta)}`);
        },
        concurrency,
        durationMs,
      );
      const bareCpu = cpuSeconds(rig.forwarder.pid) - cpu;
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
      rows.push({
        concurrency,
        worker,
        bare,
        direct,
        ratioAB: worker.rps / bare.rps,
        ratioAC: worker.rps / direct.rps,
        // Warm-up calls are not in the counts but are in the CPU: an estimate, slightly high.
        workerCpuMsPerRequest: (workerCpu * 1000) / (worker.count * (1 + 1_000 / durationMs)),
        bareCpuMsPerRequest: (bareCpu * 1000) / (bare.count * (1 + 1_000 / durationMs)),
      });
    }
  } finally {
    await caller.close();
  }
  return { rows, workerPeakRssMiB };
}
