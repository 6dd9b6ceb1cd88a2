import { request } from 'undici';
import { NatsCaller, type Delivered } from '../lib/nats-load.js';
import { summarize, nowMs, type LatencySummary } from '../lib/stats.js';
import type { UploadSink } from '../lib/sink.js';
import type { Rig } from '../lib/setup.js';
import { waitActive } from './gateway.js';

export interface StreamFigures {
  events: number;
  latency: LatencySummary;
  eventsPerSecond: number;
}

export interface SseRow {
  kind: 'fast' | 'paced';
  gateway: StreamFigures;
  direct: StreamFigures;
  addedP50: number;
  addedP99: number;
}

export interface StreamingResult {
  sse: SseRow[];
  /** Progress-file write in the container → progress message at the subscriber. */
  progress: LatencySummary;
  /** `.partial` → final rename in the container → its announcement at the subscriber. */
  rename: LatencySummary;
}

/** Reads an SSE body, timing each event against the wall-clock stamp the container put in it. */
async function readEvents(url: string, headers: Record<string, string>, body?: string): Promise<StreamFigures> {
  const answer = await request(url, {
    method: 'POST',
    headers: { accept: 'text/event-stream', ...headers },
    body: body ?? '{}',
  });
  if (answer.statusCode !== 200) throw new Error(`SSE call answered ${answer.statusCode}: ${await answer.body.text()}`);
  const latencies: number[] = [];
  let first = 0;
  let last = 0;
  let pending = '';
  for await (const chunk of answer.body) {
    const at = nowMs();
    pending += (chunk as Buffer).toString();
    const events = pending.split('\n\n');
    pending = events.pop()!;
    for (const event of events) {
      const data = /^data: (.*)$/m.exec(event)?.[1];
      if (!data) continue;
      latencies.push(at - (JSON.parse(data) as { t: number }).t);
      first ||= at;
      last = at;
    }
  }
  return {
    events: latencies.length,
    latency: summarize(latencies),
    eventsPerSecond: latencies.length / Math.max(1e-3, (last - first) / 1000),
  };
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

/** Scenario 4: SSE through the gateway against the container directly; progress and rename latency. */
export async function streaming(rig: Rig, sink: UploadSink, quick: boolean): Promise<StreamingResult> {
  await waitActive(rig);
  const caller = await NatsCaller.connect(rig.nats.url);
  try {
    const fast = await sse(rig, 'fast', 2000);
    const paced = await sse(rig, 'paced', quick ? 100 : 300);
    return {
      sse: [fast, paced],
      progress: await progress(rig, caller, quick ? 20 : 60),
      rename: await renames(rig, caller, sink, quick ? 20 : 60),
    };
  } finally {
    await caller.close();
  }
}
