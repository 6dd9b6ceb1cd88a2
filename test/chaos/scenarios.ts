import { setTimeout as sleep } from 'node:timers/promises';
import type { ScenarioRow } from './judge.js';
import { runLoad } from './load.js';
import { loadOptions, milestones, row, summarizeErrors, withCluster, type ScenarioSize } from './scenario-kit.js';

/**
 * The scenarios in which our own processes fail: workers, the container and the gateway killed
 * or stopped, and workers drained, each against a fresh cluster. NATS failing is
 * nats-scenarios.ts.
 */

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

/** How long the workers get to notice the container is back before the scenario says one did not. */
const RESUME_WITHIN_MS = 15_000;

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
    const pausedAndResumed = (w: (typeof cluster.workers)[number]) => {
      const states = w.process.lines.filter((l) => l.msg === 'worker state').map((l) => String(l.to));
      return states.includes('unhealthy') && states.lastIndexOf('running') > states.indexOf('unhealthy');
    };
    // A small load can be over (its last requests answered with errors) before the container is
    // back; the workers notice it within a health interval or two.
    const giveUpAt = Date.now() + RESUME_WITHIN_MS;
    while (!cluster.workers.every(pausedAndResumed) && Date.now() < giveUpAt) await sleep(200);
    const paused = cluster.workers.map(pausedAndResumed);
    const r = await row('container crash', cluster, load, [
      `SIGKILL at 40 %, back after 3 s; intake paused and resumed on ${paused.filter(Boolean).length} of ${paused.length} workers`,
      `errors seen: ${summarizeErrors(load)}`,
    ]);
    if (paused.some((p) => !p)) {
      const states = cluster.workers.map(
        (w) =>
          `${w.env.WORKER_ID}: ${w.process.lines
            .filter((l) => l.msg === 'worker state')
            .map((l) => String(l.to))
            .join(' → ')}`,
      );
      r.failures.push(`a worker did not pause and resume intake (${states.join('; ')})`);
    }
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
    const r = await row('gateway away', cluster, load, [
      `stopped for ${size.gatewayAwayMs / 1000} s at 50 % with ${outstanding} requests outstanding`,
    ]);
    // A stopping gateway answers every call it has read, so none it queued is left without its
    // id. A call sent on a kept-alive connection just as the gateway closes it is reset before
    // the gateway reads it: nothing was queued (NVCF_RS shows it never ran), so, like a refused
    // connection, it is the client's to send again. Only an orphan whose request ran is a loss.
    return { ...r, orphansExpected: r.orphanedRan === 0 };
  });
}

/**
 * 7. The gateway killed (SIGKILL) with calls waiting for results, calls whose body is still
 * arriving, and calls reading a large answer slowly; back on the same port 3 s later. A call cut
 * before it learnt its request id is orphaned: no server can answer after its death, so those
 * are counted and explained, not failed. Everything else must be answered once.
 */
export function gatewayKill(size: ScenarioSize): Promise<ScenarioRow> {
  return withCluster({}, async (cluster) => {
    const marks = milestones(size.n);
    const live = { slowReading: 0 };
    let midBody = 0;
    const kill = (async () => {
      await marks.at(0.5);
      // Strike while at least one client is in the middle of a large answer.
      for (let i = 0; i < 200 && live.slowReading === 0; i++) await sleep(100);
      midBody = live.slowReading;
      await cluster.gateway.stop('SIGKILL');
      await sleep(3_000);
      await cluster.gateway.restart();
    })();
    const load = await runLoad(
      loadOptions(cluster, size, {
        onFinished: marks.finished,
        sleepMs: [500, 4_000],
        slowBodyShare: 0.25,
        slowReadShare: 0.1,
        bigCopies: 60_000,
        live,
      }),
    );
    await kill;
    const r = await row('gateway kill -9', cluster, load, [
      `SIGKILL at 50 % with calls waiting, uploading (a quarter send their body in two halves) and reading 4 MB answers slowly (a tenth; ${midBody} mid-answer when it died); back after 3 s`,
    ]);
    return { ...r, orphansExpected: true };
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
