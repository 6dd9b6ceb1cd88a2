import { setTimeout as sleep } from 'node:timers/promises';
import { cpuSeconds, rssMiB } from '../lib/processes.js';
import type { Rig } from '../lib/setup.js';

export interface Footprint {
  idleRssMiB: number;
  /** Share of one core the idle worker uses (health checks, heartbeats, empty pulls). */
  idleCpuPercent: number;
  idleSeconds: number;
}

/** Scenario 5 (idle part): the worker's RSS and CPU while nothing comes in. */
export async function idleFootprint(rig: Rig, seconds: number): Promise<Footprint> {
  const cpu = cpuSeconds(rig.worker.pid);
  const started = performance.now();
  await sleep(seconds * 1000);
  const elapsed = (performance.now() - started) / 1000;
  return {
    idleRssMiB: rssMiB(rig.worker.pid),
    idleCpuPercent: ((cpuSeconds(rig.worker.pid) - cpu) / elapsed) * 100,
    idleSeconds: elapsed,
  };
}
