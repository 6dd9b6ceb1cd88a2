import { request } from 'undici';
import { NatsCaller, type Delivered } from '../lib/nats-load.js';
import { median } from '../lib/rounds.js';
import { readEvents, type StreamFigures } from '../lib/sse-read.js';
import { summarize, type LatencySummary } from '../lib/stats.js';
import type { UploadSink } from '../lib/sink.js';
import type { Rig } from '../lib/setup.js';
import { waitActive } from './gateway.js';
import { progressPolled, progressRow, sseRate, type ProgressPollRow, type SseRateRow } from './streaming-gateway.js';

interface SseRow {
  kind: 'fast' | 'paced';
  gateway: StreamFigures;
  direct: StreamFigures;
  addedP50: number;
  addedP99: number;
}

export interface StreamingResult {
  sse: SseRow[];
  /** One long stream, as fast as the container writes: the client's read rate (issue #13's 5,000 events/s). */
  sseRate: SseRateRow;
  /** Progress-file write in the container → progress message at the subscriber (medians of the rounds). */
  progress: LatencySummary;
  /** Progress-file write in the container → the 202 carrying it at a client polling the gateway. */
  progressPolled: ProgressPollRow;
  /** `.partial` → final rename in the container → its announcement at the subscriber. */
  rename: LatencySummary;
}

async function sse(rig: Rig, kind: 'fast' | 'paced', events: number): Promise<SseRow> {
  const headers = {
    'content-type': 'application/json',
    'x-bench-mode': `sse-${kind}`,
    'x-bench-events': String(events),
  };
  // Direct first, then through the gateway, then direct again: the better direct run counts, so
  // a noisy moment on this machine cannot flatter the sidecar.
  const direct1 = await readEvents(`${rig.containerOrigin}/echo`, headers);
  const gateway = await readEvents(`${rig.gatewayUrl}/v2/nvcf/pexec/functions/${rig.workerFn.functionId}`, headers);
  const direct2 = await readEvents(`${rig.containerOrigin}/echo`, headers);
  const direct = direct1.latency.p50 <= direct2.latency.p50 ? direct1 : direct2;
  return {
    kind,
    gateway,
    direct,
    addedP50: gateway.latency.p50 - direct.latency.p50,
    addedP99: gateway.latency.p99 - direct.latency.p99,
  };
}

async function progress(rig: Rig, caller: NatsCaller, steps: number): Promise<LatencySummary> {
  const latencies: number[] = [];
  const onResponse = (d: Delivered) => {
    if (d.meta.kind === 'progress')
      latencies.push(d.at - (JSON.parse(Buffer.from(d.body).toString()) as { t: number }).t);
  };
  const headers: [string, string][] = [
    ['Content-Type', 'application/json'],
    ['x-bench-mode', 'progress'],
    ['x-bench-steps', String(steps)],
  ];
  const final = await caller.invoke(rig.workerFn.functionId, rig.workerFn.functionVersionId, { headers }, onResponse);
  if (final.meta.kind !== 'final' || final.meta.status !== 200)
    throw new Error(`progress run answered ${JSON.stringify(final.meta)}`);
  return summarize(latencies);
}

async function renames(rig: Rig, caller: NatsCaller, sink: UploadSink, steps: number): Promise<LatencySummary> {
  const announced = new Map<string, number>();
  const onResponse = (d: Delivered) => {
    if (d.meta.kind === 'output')
      for (const file of d.meta.files) if (!announced.has(file.name)) announced.set(file.name, d.at);
  };
  const requestId = crypto.randomUUID();
  const headers: [string, string][] = [
    ['Content-Type', 'application/json'],
    ['x-bench-mode', 'renames'],
    ['x-bench-steps', String(steps)],
  ];
  const largeResult = { uploadUrl: sink.url(requestId), downloadUrl: `http://127.0.0.1:9/results/${requestId}` };
  const final = await caller.invoke(
    rig.workerFn.functionId,
    rig.workerFn.functionVersionId,
    { headers, largeResult, requestId },
    onResponse,
  );
  if (final.meta.kind !== 'final' || final.meta.status !== 302)
    throw new Error(`renames run answered ${JSON.stringify(final.meta)}`);
  const marks = (await (await request(`${rig.containerOrigin}/marks?id=${requestId}`)).body.json()) as Record<
    string,
    number
  >;
  const latencies = Object.entries(marks).map(([name, at]) => (announced.get(name) ?? NaN) - at);
  if (latencies.some(Number.isNaN))
    throw new Error(`some renamed files were never announced: ${JSON.stringify([...announced.keys()])}`);
  return summarize(latencies);
}

/** Medians of per-round summaries; counts add up, max is the worst. */
function medianSummary(runs: LatencySummary[]): LatencySummary {
  return {
    count: runs.reduce((sum, r) => sum + r.count, 0),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    mean: median(runs.map((r) => r.mean)),
    max: Math.max(...runs.map((r) => r.max)),
  };
}

/**
 * Scenario 4: SSE through the gateway against the container directly (two short streams for the
 * per-event latency, one long one for the read rate); progress to a NATS subscriber and to a client
 * polling the gateway, alternating for `rounds` rounds; rename latency.
 */
export async function streaming(rig: Rig, sink: UploadSink, quick: boolean, rounds: number): Promise<StreamingResult> {
  await waitActive(rig);
  const caller = await NatsCaller.connect(rig.nats.url);
  try {
    const fast = await sse(rig, 'fast', 2000);
    const paced = await sse(rig, 'paced', quick ? 100 : 300);
    const rate = await sseRate(rig, quick ? 5_000 : 20_000, rounds);
    const steps = quick ? 20 : 60;
    const toSubscriber: LatencySummary[] = [];
    const polled: { latencies: number[] }[] = [];
    for (let round = 0; round < rounds; round++) {
      toSubscriber.push(await progress(rig, caller, steps));
      polled.push(await progressPolled(rig, steps));
    }
    return {
      sse: [fast, paced],
      sseRate: rate,
      progress: medianSummary(toSubscriber),
      progressPolled: progressRow(polled, steps),
      rename: await renames(rig, caller, sink, steps),
    };
  } finally {
    await caller.close();
  }
}
