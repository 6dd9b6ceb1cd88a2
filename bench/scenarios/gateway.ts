import { Pool, request } from 'undici';
import { closedLoop, type LoadResult } from '../lib/load.js';
import type { Rig } from '../lib/setup.js';
import { PAYLOAD } from './throughput.js';

export interface GatewayRow {
  concurrency: number;
  gateway: LoadResult;
  direct: LoadResult;
  addedP50: number;
  addedP99: number;
  /** req/s through the gateway over req/s straight at the container. */
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
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the gateway never saw the bench worker as ACTIVE');
}

/**
 * Scenario 2: pexec through the gateway (HTTP → gateway → NATS → worker → container and back)
 * against the same HTTP load straight at the container, at each concurrency.
 */
export async function throughGateway(rig: Rig, levels: number[], durationMs: number): Promise<GatewayRow[]> {
  await waitActive(rig);
  const rows: GatewayRow[] = [];
  const gatewayOrigin = new URL(rig.gatewayUrl).origin;
  const path = `/v2/nvcf/pexec/functions/${rig.workerFn.functionId}`;
  for (const concurrency of levels) {
    const gw = new Pool(gatewayOrigin, { connections: concurrency });
    const gateway = await closedLoop(
      async () => {
        const answer = await gw.request({
          method: 'POST',
          path,
          headers: { 'content-type': 'application/json' },
          body: PAYLOAD,
        });
        await answer.body.arrayBuffer();
        if (answer.statusCode !== 200) throw new Error(`gateway answered ${answer.statusCode}`);
      },
      concurrency,
      durationMs,
    );
    await gw.close();
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
      gateway,
      direct,
      addedP50: gateway.p50 - direct.p50,
      addedP99: gateway.p99 - direct.p99,
      ratio: gateway.rps / direct.rps,
    });
  }
  return rows;
}
