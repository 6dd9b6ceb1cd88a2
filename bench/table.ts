import type { Footprint } from './scenarios/footprint.js';
import type { GatewayRow } from './scenarios/gateway.js';
import type { LargeRow } from './scenarios/large.js';
import type { StreamingResult } from './scenarios/streaming.js';
import type { ThroughputResult } from './scenarios/throughput.js';

export interface Report {
  startedAt: string;
  quick: boolean;
  machine: Record<string, string | number>;
  footprint?: Footprint;
  throughput?: ThroughputResult;
  gateway?: GatewayRow[];
  streaming?: StreamingResult;
  large?: LargeRow[];
}

const f = (n: number | undefined, digits = 2) => (n === undefined || !Number.isFinite(n) ? '—' : n.toFixed(digits));
const i = (n: number) => Math.round(n).toLocaleString('en-US');

/** The whole run as one Markdown table, ready for docs/performance.md. */
export function renderTable(report: Report): string {
  const rows: string[][] = [];
  const t = report.throughput;
  for (const r of t?.rows ?? []) {
    const label = `1. NATS c=${r.concurrency}`;
    rows.push([
      label,
      '(a) worker',
      `${i(r.worker.rps)} req/s`,
      `p50 ${f(r.worker.p50)} ms, p99 ${f(r.worker.p99)} ms`,
      `a/b ${f(r.ratioAB)} (rounds ${r.roundRatiosAB.map((x) => f(x)).join(', ')}), a/c ${f(r.ratioAC, 3)}`,
    ]);
    rows.push([
      label,
      '(b) bare forwarder',
      `${i(r.bare.rps)} req/s`,
      `p50 ${f(r.bare.p50)} ms, p99 ${f(r.bare.p99)} ms`,
      `CPU/req: a ${f(r.workerCpuMsPerRequest)} ms, b ${f(r.bareCpuMsPerRequest)} ms`,
    ]);
    rows.push([
      label,
      '(c) direct undici',
      `${i(r.direct.rps)} req/s`,
      `p50 ${f(r.direct.p50)} ms, p99 ${f(r.direct.p99)} ms`,
      '',
    ]);
  }
  for (const r of report.gateway ?? []) {
    rows.push([
      `2. gateway c=${r.concurrency}`,
      'pexec vs direct',
      `${i(r.gateway.rps)} vs ${i(r.direct.rps)} req/s`,
      `added p50 ${f(r.addedP50)} ms, p99 ${f(r.addedP99)} ms`,
      `req/s ratio ${f(r.ratio, 3)}`,
    ]);
  }
  for (const r of report.large ?? []) {
    const fromFile =
      r.secondsFromFinalFileTo302 === undefined
        ? ''
        : `, ${f(r.secondsFromFinalFileTo302)} s after the last file was final`;
    rows.push([
      '3. large outputs',
      r.case,
      `302 in ${f(r.secondsTo302)} s${fromFile}`,
      `zip ${f(r.zipBytes / 1024 ** 2, 1)} MiB at ${f(r.uploadMBps, 0)} MiB/s`,
      `worker RSS +${f(r.rssGrowthMiB, 1)} MiB (${f(r.rssBeforeMiB, 0)} → ${f(r.rssPeakMiB, 0)})`,
    ]);
  }
  const s = report.streaming;
  for (const r of s?.sse ?? []) {
    rows.push([
      `4. SSE ${r.kind === 'fast' ? `${r.gateway.events} events, as fast as possible` : `${r.gateway.events} events, one per 10 ms`}`,
      'gateway vs direct',
      `${i(r.gateway.eventsPerSecond)} vs ${i(r.direct.eventsPerSecond)} events/s`,
      `added p50 ${f(r.addedP50)} ms, p99 ${f(r.addedP99)} ms`,
      `direct p50 ${f(r.direct.latency.p50)} ms`,
    ]);
  }
  if (s) {
    const r = s.sseRate;
    rows.push([
      `4. SSE ${i(r.events)} events, as fast as possible, ${r.rounds} rounds`,
      'gateway vs direct, client read rate',
      `first to last ${i(r.gateway.eventsPerSecond)} vs ${i(r.direct.eventsPerSecond)} events/s; from the request ${i(r.gateway.eventsPerSecondFromStart)} vs ${i(r.direct.eventsPerSecondFromStart)}`,
      `added p50 ${f(r.addedP50)} ms, p99 ${f(r.addedP99)} ms`,
      `first event after ${f(r.gateway.firstEventMs)} vs ${f(r.direct.firstEventMs)} ms; rounds (gateway/direct events/s) ${r.perRound.map((x) => `${i(x.gateway.eventsPerSecond)}/${i(x.direct.eventsPerSecond)}`).join(', ')}`,
    ]);
    rows.push([
      '4. progress',
      'file write → message',
      `${s.progress.count} messages`,
      `p50 ${f(s.progress.p50)} ms, p99 ${f(s.progress.p99)} ms`,
      '',
    ]);
    const p = s.progressPolled;
    rows.push([
      '4. progress via gateway',
      'file write → 202 at a polling client',
      `${p.answers} 202s for ${p.rounds} × ${p.writes} writes`,
      `p50 ${f(p.p50)} ms, p99 ${f(p.p99)} ms, max ${f(p.max)} ms`,
      '',
    ]);
    rows.push([
      '4. `.partial` rename',
      'rename → announcement',
      `${s.rename.count} files`,
      `p50 ${f(s.rename.p50)} ms, p99 ${f(s.rename.p99)} ms`,
      '',
    ]);
  }
  if (report.footprint) {
    rows.push([
      '5. footprint',
      'idle worker',
      `RSS ${f(report.footprint.idleRssMiB, 1)} MiB`,
      `CPU ${f(report.footprint.idleCpuPercent, 2)} % of a core`,
      '',
    ]);
  }
  if (t) rows.push(['5. footprint', 'worker at c=64', `peak RSS ${f(t.workerPeakRssMiB, 1)} MiB`, '', '']);
  const header = ['scenario', 'what', 'rate / size', 'latency', 'ratio / notes'];
  return [header, header.map(() => '---'), ...rows].map((r) => `| ${r.join(' | ')} |`).join('\n');
}
