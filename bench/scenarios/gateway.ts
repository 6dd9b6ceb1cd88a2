import { setTimeout as sleep } from 'node:timers/promises';
import { Pool, request } from 'undici';
import { closedLoop, type LoadResult } from '../lib/load.js';
import { median, medianLoad } from '../lib/rounds.js';
import type { Rig } from '../lib/setup.js';
import { PAYLOAD } from './throughput.js';

export interface GatewayRow {
  concurrency: number;
  /** Medians over the rounds (see bench/lib/rounds.ts). */
  gateway: LoadResult;
  direct: LoadResult;
  /** Median of the per-round differences in p50 and p99 latency. */
  addedP50: number;
  addedP99: number;
  /** req/s through the gateway over req/s straight at the container (median of the rounds). */
  ratio: number;
}

/** Waits until the gateway lists the worker's function version as ACTIVE (it learns from heartbeats). */
export async function waitActive(rig: Rig): Promise<void> {
  const { functionId, functionVersionId } = rig.workerFn;
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const res = await request(`${rig.gatewayUrl}/v2/nvcf/functions/${functionId}/versions/${functionVersionId}`);
    const text = await res.body.text();
    if (res.statusCode === 200 && text.includes('"ACTIVE"')) return;
    await sleep(200);
  }
  throw new Error('the gateway never saw the bench worker as ACTIVE');
}

async function load(origin: string, path: string, concurrency: number, durationMs: number): Promise<LoadResult> {
  const pool = new Pool(origin, { connections: concurrency });
  try {
    return await closedLoop(
      async () => {
        const answer = await pool.request({
          method: 'POST',
          path,
          headers: { 'content-type': 'application/json' },
          body: PAYLOAD,
        });
        await answer.body.arrayBuffer();
        if (answer.statusCode !== 200) throw new Error(`${origin}${path} answered ${answer.statusCode}`);
      },
      concurrency,
      durationMs,
    );
  } finally {
    await pool.close();
  }
}

/**
 * Scenario 2: pexec through the gateway (HTTP → gateway → NATS → worker → container and back)
 * against the same HTTP load straight at the container, alternating for `rounds` rounds at each
 * concurrency.
 */
export async function throughGateway(
  rig: Rig,
  levels: number[],
  durationMs: number,
  rounds: number,
): Promise<GatewayRow[]> {
  await waitActive(rig);
  const rows: GatewayRow[] = [];
  const gatewayOrigin = new URL(rig.gatewayUrl).origin;
  const path = `/v2/nvcf/pexec/functions/${rig.workerFn.functionId}`;
  for (const concurrency of levels) {
    const viaGateway: LoadResult[] = [];
    const direct: LoadResult[] = [];
    for (let round = 0; round < rounds; round++) {
      viaGateway.push(await load(gatewayOrigin, path, concurrency, durationMs));
      direct.push(await load(rig.containerOrigin, '/echo', concurrency, durationMs));
    }
    rows.push({
      concurrency,
      gateway: medianLoad(viaGateway),
      direct: medianLoad(direct),
      addedP50: median(viaGateway.map((g, i) => g.p50 - direct[i]!.p50)),
      addedP99: median(viaGateway.map((g, i) => g.p99 - direct[i]!.p99)),
      ratio: median(viaGateway.map((g, i) => g.rps / direct[i]!.rps)),
    });
  }
  return rows;
}
