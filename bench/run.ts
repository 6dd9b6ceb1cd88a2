import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, release } from 'node:os';
import { join } from 'node:path';
import { root } from './lib/processes.js';
import { startRig } from './lib/setup.js';
import { UploadSink } from './lib/sink.js';
import { idleFootprint } from './scenarios/footprint.js';
import { throughGateway } from './scenarios/gateway.js';
import { largeOutputs } from './scenarios/large.js';
import { streaming } from './scenarios/streaming.js';
import { throughput } from './scenarios/throughput.js';
import { roundsFromEnv } from './lib/rounds.js';
import { renderTable, type Report } from './table.js';

/**
 * `npm run bench [-- --quick] [-- --only=1,3] [-- --profile=<dir>]`: every scenario against real
 * processes on loopback, one table on stdout, the figures in bench/results/latest.json.
 * --quick (or BENCH_QUICK=1) shortens every run for a smoke check; its figures are noisier.
 * Scenarios 1 and 2 alternate the systems they compare (a, b, a, b …) for BENCH_ROUNDS rounds
 * (default 5) of BENCH_DURATION_MS (default 4 s) and report medians.
 * --profile writes the worker's and the gateway's CPU profiles (node --cpu-prof) into <dir> when the run ends.
 */
const args = process.argv.slice(2);
const quick = args.includes('--quick') || process.env.BENCH_QUICK === '1';
const only = new Set((args.find((a) => a.startsWith('--only='))?.slice(7) ?? '1,2,3,4,5').split(',').map(Number));
const profileDir = args.find((a) => a.startsWith('--profile='))?.slice(10);
// Each comparison alternates its systems for BENCH_ROUNDS rounds of BENCH_DURATION_MS each.
const durationMs = Number(process.env.BENCH_DURATION_MS) || (quick ? 2_000 : 4_000);
const rounds = roundsFromEnv(quick);

function version(command: string, ...a: string[]): string {
  try {
    return execFileSync(command, a, { encoding: 'utf8' }).trim().split('\n')[0]!;
  } catch {
    return 'unknown';
  }
}

const machine = {
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  memoryGiB: Math.round(totalmem() / 1024 ** 3),
  kernel: release(),
  node: process.version,
  natsServer: version('nats-server', '--version'),
  commit: version('git', '-C', root, 'rev-parse', '--short', 'HEAD'),
};
const started = new Date();
const log = (text: string) =>
  process.stderr.write(`[bench ${((Date.now() - started.getTime()) / 1000).toFixed(0)}s] ${text}\n`);

log(`starting nats-server, container, worker (dist/main.js), bare forwarder, gateway${quick ? ' (quick)' : ''}`);
const rig = await startRig(profileDir);
const sink = await UploadSink.start();
const results: Record<string, unknown> = {};
try {
  if (only.has(5)) {
    log('scenario 5: idle footprint');
    results.footprint = await idleFootprint(rig, quick ? 3 : 10);
  }
  if (only.has(1)) {
    log('scenario 1: throughput through NATS, worker vs bare forwarder vs direct');
    results.throughput = await throughput(rig, [1, 16, 64], durationMs, rounds);
  }
  if (only.has(2)) {
    log('scenario 2: through the gateway');
    results.gateway = await throughGateway(rig, [1, 16], durationMs, rounds);
  }
  if (only.has(4)) {
    log('scenario 4: SSE, progress and rename latency');
    results.streaming = await streaming(rig, sink, quick, rounds);
  }
  if (only.has(3)) {
    log('scenario 3: large outputs');
    results.large = await largeOutputs(rig, sink, quick);
  }
} finally {
  await sink.close();
  await rig.close();
}

const report: Report & Record<string, unknown> = {
  startedAt: started.toISOString(),
  seconds: (Date.now() - started.getTime()) / 1000,
  quick,
  machine,
  worker: 'node dist/main.js worker (compiled)',
  ...results,
};
mkdirSync(join(root, 'bench/results'), { recursive: true });
writeFileSync(join(root, 'bench/results/latest.json'), `${JSON.stringify(report, null, 2)}\n`);
process.stdout.write(`${renderTable(report)}\n`);
log('figures written to bench/results/latest.json');
