import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runFuzz, type FuzzReport } from './fuzz.js';
import { crashedRow, rowFailed } from './judge.js';
import { pollStorm, slowSseReader, type PressureRow, type PressureSize } from './pressure.js';
import {
  reliabilityDoc,
  details,
  drainTable,
  fuzzTable,
  gatewayFuzzTable,
  pressureTable,
  scenarioTable,
} from './report.js';
import type { ScenarioRow } from './judge.js';
import { natsNodeKill, natsOutage, natsRestart } from './nats-scenarios.js';
import type { ScenarioSize } from './scenario-kit.js';
import { containerCrash, drain, gatewayAway, gatewayKill, workerCrash, type DrainRow } from './scenarios.js';

/**
 * `npm run chaos [-- --n 1000 --fuzz 10000 --gateway-fuzz 1000 --many-files 100000 --seed 42 --only crash,fuzz]`:
 * every scenario at full size, a table on stdout, and docs/reliability.md rewritten with the
 * figures (full runs only). Scenarios: crash, nats, container, gateway, drain, outage,
 * gateway-kill, cluster, sse, storm, fuzz.
 */
const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '32' },
    fuzz: { type: 'string', default: '10000' },
    'many-files': { type: 'string', default: '100000' },
    'gateway-fuzz': { type: 'string', default: '1000' },
    seed: { type: 'string' },
    'away-seconds': { type: 'string', default: '30' },
    'outage-seconds': { type: 'string', default: '20' },
    'sse-mb': { type: 'string', default: '512' },
    'storm-seconds': { type: 'string', default: '60' },
    only: { type: 'string' },
    'no-doc': { type: 'boolean', default: false },
    /** Rewrite docs/reliability.md from a run of chosen scenarios; it then says which ran. */
    'write-doc': { type: 'boolean', default: false },
  },
});

const size: ScenarioSize = {
  n: Number(values.n),
  concurrency: Number(values.concurrency),
  gatewayAwayMs: Number(values['away-seconds']) * 1000,
  killEveryMs: 3_000,
  natsOutageMs: Number(values['outage-seconds']) * 1000,
};
const pressure: PressureSize = {
  sseBytes: Number(values['sse-mb']) * 1024 * 1024,
  sseReadMs: 40_000,
  stormRequests: 16,
  stormClients: 64,
  stormMs: Number(values['storm-seconds']) * 1000,
};
const seed = values.seed ? Number(values.seed) : Math.floor(Math.random() * 2 ** 31);
const only = values.only ? new Set(values.only.split(',')) : undefined;
const wanted = (name: string) => !only || only.has(name);

const rows: ScenarioRow[] = [];
let drainRow: DrainRow | undefined;
let fuzz: FuzzReport | undefined;
const scenarios: [string, () => Promise<ScenarioRow>][] = [
  ['crash', () => workerCrash(size)],
  ['nats', () => natsRestart(size)],
  ['container', () => containerCrash(size)],
  ['gateway', () => gatewayAway(size)],
  ['drain', async () => (drainRow = await drain(size))],
  ['outage', () => natsOutage(size)],
  ['gateway-kill', () => gatewayKill(size)],
  ['cluster', () => natsNodeKill(size)],
];
const pressureRows: PressureRow[] = [];
for (const [name, run] of scenarios) {
  if (!wanted(name)) continue;
  process.stdout.write(`running ${name} (${size.n} requests at concurrency ${size.concurrency})…\n`);
  try {
    rows.push(await run());
  } catch (err) {
    // One scenario's harness failing must not lose the others' figures; it fails the run.
    rows.push(crashedRow(name, err as Error));
  }
  process.stdout.write(`${scenarioTable(rows.slice(-1))}\n`);
}
for (const [name, run] of [
  ['sse', () => slowSseReader(pressure)],
  ['storm', () => pollStorm(pressure)],
] as const) {
  if (!wanted(name)) continue;
  process.stdout.write(`running ${name}…\n`);
  pressureRows.push(await run());
  process.stdout.write(`${pressureTable(pressureRows.slice(-1))}\n`);
}
if (wanted('fuzz')) {
  process.stdout.write(
    `running fuzz: ${values.fuzz} cases, ${values['gateway-fuzz']} through the gateway, seed ${seed} (replay with --only fuzz --seed ${seed})…\n`,
  );
  fuzz = await runFuzz({
    seed,
    cases: Number(values.fuzz),
    manyFiles: Number(values['many-files']),
    gatewayCases: Number(values['gateway-fuzz']),
  });
}

process.stdout.write(
  `\n${scenarioTable(rows)}\n\n${drainTable(drainRow)}\n\n${pressureTable(pressureRows)}\n\n${fuzzTable(fuzz)}\n\n${gatewayFuzzTable(fuzz)}\n\n${details(rows, pressureRows, fuzz)}\n`,
);
const failed =
  rows.some(rowFailed) ||
  pressureRows.some((r) => r.failures.length > 0) ||
  (drainRow?.drains.some((d) => d.exitCode !== 0) ?? false) ||
  (fuzz !== undefined &&
    (fuzz.crashes > 0 ||
      fuzz.escapes.length > 0 ||
      fuzz.unanswered.length > 0 ||
      fuzz.wrongAnswers.length > 0 ||
      fuzz.spoofed > 0)) ||
  (fuzz?.gateway !== undefined &&
    (!fuzz.gateway.gatewayAlive ||
      [
        fuzz.gateway.wrong,
        fuzz.gateway.gatewayErrors,
        fuzz.gateway.hung,
        fuzz.gateway.leaks,
        fuzz.gateway.crossClient,
      ].some((list) => list.length > 0)));
if (!values['no-doc'] && (!only || values['write-doc'])) {
  const doc = reliabilityDoc(rows, drainRow, pressureRows, fuzz, {
    when: new Date().toISOString().slice(0, 10),
    command: only ? `npm run chaos -- --only ${values.only} --n ${size.n}` : 'npm run chaos',
    size: `N = ${size.n} at concurrency ${size.concurrency}, ${values.fuzz} fuzz cases on the work queue and ${values['gateway-fuzz']} through the gateway, gateway away ${size.gatewayAwayMs / 1000} s, NATS outage ${size.natsOutageMs / 1000} s, SSE ${values['sse-mb']} MiB offered, poll storm ${values['storm-seconds']} s${only ? `; only the scenarios named ran this time, and the tables below hold no rows for the others` : ''}`,
  });
  await writeFile(fileURLToPath(new URL('../../docs/reliability.md', import.meta.url)), doc);
  process.stdout.write('wrote docs/reliability.md\n');
}
process.stdout.write(failed ? 'CHAOS: FAILURES FOUND\n' : 'CHAOS: all clear\n');
process.exit(failed ? 1 : 0);
