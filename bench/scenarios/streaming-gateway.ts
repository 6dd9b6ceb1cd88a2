import { request } from 'undici';
import { median } from '../lib/rounds.js';
import { readEvents, type StreamFigures } from '../lib/sse-read.js';
import { summarize, nowMs, type LatencySummary } from '../lib/stats.js';
import type { Rig } from '../lib/setup.js';

/** Medians over the rounds of one long SSE stream, written by the container as fast as it can. */
export interface SseRateRow {
  events: number;
  rounds: number;
  /** Each figure the median of the rounds' figures. */
  gateway: { eventsPerSecond: number; eventsPerSecondFromStart: number; firstEventMs: number; p50: number };
  direct: { eventsPerSecond: number; eventsPerSecondFromStart: number; firstEventMs: number; p50: number };
  /** Median of the per-round differences in per-event latency. */
  addedP50: number;
  addedP99: number;
  /** Per round, gateway then direct: events/s first to last, per-event p50 (ms), first event (ms). */
  perRound: { gateway: RoundFigures; direct: RoundFigures }[];
}

/** Progress through the gateway: file write in the container → the 202 carrying it at the client. */
export interface ProgressPollRow {
  rounds: number;
  /** Progress writes per round, and the 202s with progress the client got, over all rounds. */
  writes: number;
  answers: number;
  /** Medians of the rounds' p50 and p99, and the worst delay seen. */
  p50: number;
  p99: number;
  max: number;
}

interface RoundFigures {
  eventsPerSecond: number;
  p50: number;
  firstEventMs: number;
}

const roundFigures = (r: StreamFigures): RoundFigures => ({
  eventsPerSecond: r.eventsPerSecond,
  p50: r.latency.p50,
  firstEventMs: r.firstEventMs,
});

const pexecPath = (rig: Rig) => `${rig.gatewayUrl}/v2/nvcf/pexec/functions/${rig.workerFn.functionId}`;

function pick(runs: StreamFigures[]) {
  return {
    eventsPerSecond: median(runs.map((r) => r.eventsPerSecond)),
    eventsPerSecondFromStart: median(runs.map((r) => r.eventsPerSecondFromStart)),
    firstEventMs: median(runs.map((r) => r.firstEventMs)),
    p50: median(runs.map((r) => r.latency.p50)),
  };
}

/**
 * One stream of `events` small events, the container writing as fast as it can, read through the
 * gateway and straight from the container, alternating for `rounds` rounds. A run that did not
 * deliver every event fails the bench: a rate over a short stream would flatter it.
 */
export async function sseRate(rig: Rig, events: number, rounds: number): Promise<SseRateRow> {
  const headers = { 'content-type': 'application/json', 'x-bench-mode': 'sse-fast', 'x-bench-events': String(events) };
  const viaGateway: StreamFigures[] = [];
  const direct: StreamFigures[] = [];
  for (let round = 0; round < rounds; round++) {
    viaGateway.push(await readEvents(pexecPath(rig), headers));
    direct.push(await readEvents(`${rig.containerOrigin}/echo`, headers));
  }
  for (const run of [...viaGateway, ...direct])
    if (run.events !== events) throw new Error(`an SSE run delivered ${run.events} of ${events} events`);
  return {
    events,
    rounds,
    gateway: pick(viaGateway),
    direct: pick(direct),
    addedP50: median(viaGateway.map((g, i) => g.latency.p50 - direct[i]!.latency.p50)),
    addedP99: median(viaGateway.map((g, i) => g.latency.p99 - direct[i]!.latency.p99)),
    perRound: viaGateway.map((g, i) => ({ gateway: roundFigures(g), direct: roundFigures(direct[i]!) })),
  };
}

/**
 * One request whose container writes the progress file `steps` times, 50 ms apart, each stamped
 * with the wall-clock time of the write. The client calls pexec with a 60 s poll window and polls
 * the status path again as soon as each 202 arrives (the gateway answers a waiting poll at once on
 * new progress); for each 202 with progress, the delay from the write it carries to the moment
 * its body was read.
 */
export async function progressPolled(rig: Rig, steps: number): Promise<{ latencies: number[] }> {
  const headers = { 'nvcf-poll-seconds': '60' };
  let answer = await request(pexecPath(rig), {
    method: 'POST',
    headers: {
      ...headers,
      'content-type': 'application/json',
      'x-bench-mode': 'progress',
      'x-bench-steps': String(steps),
    },
    body: '{}',
  });
  const latencies: number[] = [];
  for (;;) {
    const text = await answer.body.text();
    const at = nowMs();
    if (answer.statusCode === 200) return { latencies };
    if (answer.statusCode !== 202) throw new Error(`progress poll answered ${answer.statusCode}: ${text}`);
    if (text) latencies.push(at - (JSON.parse(text) as { t: number }).t);
    const requestId = String(answer.headers['nvcf-reqid']);
    answer = await request(`${rig.gatewayUrl}/v2/nvcf/pexec/status/${requestId}`, { headers });
  }
}

/** Figures of `progressPolled` runs, one per round. */
export function progressRow(runs: { latencies: number[] }[], steps: number): ProgressPollRow {
  const summaries: LatencySummary[] = runs.map((r) => summarize(r.latencies));
  return {
    rounds: runs.length,
    writes: steps,
    answers: runs.reduce((sum, r) => sum + r.latencies.length, 0),
    p50: median(summaries.map((s) => s.p50)),
    p99: median(summaries.map((s) => s.p99)),
    max: Math.max(...summaries.map((s) => s.max)),
  };
}
