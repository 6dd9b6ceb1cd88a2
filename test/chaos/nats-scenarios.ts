import { setTimeout as sleep } from 'node:timers/promises';
import { streams } from '../../src/shared/protocol.js';
import type { ScenarioRow } from './judge.js';
import { runLoad } from './load.js';
import { loadOptions, milestones, row, withCluster, type ScenarioSize } from './scenario-kit.js';

/**
 * The scenarios in which NATS fails: a short restart, an outage longer than a poll window, and a
 * node of a three-node cluster killed while it leads a stream.
 */

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
