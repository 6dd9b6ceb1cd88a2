import { describe, expect, it } from 'vitest';
import { runFuzz } from '../chaos/fuzz.js';
import type { ScenarioRow } from '../chaos/judge.js';
import { pollStorm, slowSseReader, type PressureSize } from '../chaos/pressure.js';
import { natsNodeKill, natsOutage, natsRestart } from '../chaos/nats-scenarios.js';
import type { ScenarioSize } from '../chaos/scenario-kit.js';
import { containerCrash, drain, gatewayAway, gatewayKill, workerCrash } from '../chaos/scenarios.js';

/**
 * The chaos suite at a size CI can afford (`npm run chaos` runs it at N = 1,000 and writes
 * docs/reliability.md). Each scenario runs real processes; a failure message lists what the
 * clients saw.
 */
const size: ScenarioSize = { n: 120, concurrency: 16, gatewayAwayMs: 5_000, killEveryMs: 2_000, natsOutageMs: 20_000 };
/** The newer scenarios strike once at a set point; fewer requests still put calls in every state. */
const short: ScenarioSize = { ...size, n: 64 };
const pressure: PressureSize = {
  sseBytes: 256 * 1024 * 1024,
  sseReadMs: 15_000,
  stormRequests: 8,
  stormClients: 32,
  stormMs: 10_000,
};
const MINUTE = 60_000;

/** What must be zero in every scenario; a failure message lists what the clients saw. */
const judged = (row: ScenarioRow) => ({
  lost: row.lost,
  duplicated: row.duplicated,
  misreported: row.misreported,
  orphaned: row.orphansExpected ? 0 : row.orphaned,
});
const clean = { lost: 0, duplicated: 0, misreported: 0, orphaned: 0 };

describe('under crashes, restarts and hostile input', () => {
  it(
    'loses and duplicates nothing while workers are SIGKILLed and restarted',
    async () => {
      const row = await workerCrash(size);
      expect({ ...judged(row), errored: row.errored, failures: row.failures }).toEqual({
        ...clean,
        errored: 0,
        failures: [],
      });
    },
    3 * MINUTE,
  );

  it(
    'loses and duplicates nothing across a NATS restart',
    async () => {
      const row = await natsRestart(size);
      expect(judged(row), row.failures.join('\n')).toEqual(clean);
    },
    5 * MINUTE,
  );

  it(
    'answers requests caught in a container crash with a clear error, pauses intake, and loses nothing',
    async () => {
      const row = await containerCrash(size);
      expect(judged(row), row.failures.join('\n')).toEqual(clean);
      expect(
        row.failures.every((f) => /Inference connection error/.test(f)),
        row.failures.join('\n'),
      ).toBe(true);
    },
    3 * MINUTE,
  );

  it(
    'keeps results waiting while the gateway is away',
    async () => {
      const row = await gatewayAway(size);
      // Orphans count only when their request ran: see the scenario.
      expect(judged(row), [...row.notes, ...row.failures].join('\n')).toEqual(clean);
    },
    3 * MINUTE,
  );

  it(
    'drains busy workers on SIGTERM: exit 0, nothing lost',
    async () => {
      const row = await drain(size);
      expect({ ...judged(row), errored: row.errored }).toEqual({ ...clean, errored: 0 });
      expect(row.drains.map((d) => d.exitCode)).toEqual([0, 0]);
      for (const d of row.drains) expect(d.finished + d.returned).toBeGreaterThanOrEqual(d.aborted);
    },
    3 * MINUTE,
  );

  it(
    'tells callers waiting through a 20 s NATS outage to poll again, never that a request that succeeded failed',
    async () => {
      const row = await natsOutage(short);
      expect(judged(row), [...row.notes, ...row.failures].join('\n')).toEqual(clean);
    },
    5 * MINUTE,
  );

  it(
    'loses, duplicates and misreports nothing when the gateway is killed with calls waiting, uploading and reading; orphans are only calls cut before their id',
    async () => {
      const row = await gatewayKill(short);
      expect(judged(row), [...row.notes, ...row.failures].join('\n')).toEqual(clean);
    },
    5 * MINUTE,
  );

  it(
    'loses and duplicates nothing on a three-node NATS cluster while the nodes leading the streams are killed and restarted',
    async () => {
      const row = await natsNodeKill(short);
      expect(judged(row), [...row.notes, ...row.failures].join('\n')).toEqual(clean);
    },
    5 * MINUTE,
  );

  it(
    'keeps the gateway and the results stream bounded for a client reading an event stream slowly: the container is held back',
    async () => {
      const row = await slowSseReader(pressure);
      expect(row.failures, row.figures.map((f) => f.join(': ')).join('; ')).toEqual([]);
    },
    3 * MINUTE,
  );

  it(
    'leaves no consumers behind on the results stream after a storm of status polls',
    async () => {
      const row = await pollStorm(pressure);
      expect(row.failures, row.figures.map((f) => f.join(': ')).join('; ')).toEqual([]);
    },
    3 * MINUTE,
  );

  it(
    'survives seeded hostile input on the work queue and at the gateway: no crash, every case answered as it should be, nothing read or written outside',
    async () => {
      // A fixed seed keeps CI reproducible; CHAOS_SEED explores others.
      const seed = Number(process.env.CHAOS_SEED ?? 1);
      const report = await runFuzz({ seed, cases: 400, manyFiles: 2_000, gatewayCases: 100 });
      expect(
        {
          crashes: report.crashDetails,
          unanswered: report.unanswered,
          wrong: report.wrongAnswers,
          escapes: report.escapes,
          spoofed: report.spoofed,
        },
        `seed ${seed}`,
      ).toEqual({
        crashes: [],
        unanswered: [],
        wrong: [],
        escapes: [],
        spoofed: 0,
      });
      expect(report.manyFiles.fileCount, `seed ${seed}`).toBe(2_000);
      const gateway = report.gateway!;
      expect(
        {
          alive: gateway.gatewayAlive,
          wrong: gateway.wrong,
          gatewayErrors: gateway.gatewayErrors,
          hung: gateway.hung,
          leaks: gateway.leaks,
          crossClient: gateway.crossClient,
        },
        `seed ${seed}`,
      ).toEqual({
        alive: true,
        wrong: [],
        gatewayErrors: [],
        hung: [],
        leaks: [],
        crossClient: [],
      });
      expect(gateway.answered + gateway.refused, `seed ${seed}`).toBe(100);
    },
    5 * MINUTE,
  );
});
