import { request } from 'undici';
import { summarize, nowMs, type LatencySummary } from './stats.js';

export interface StreamFigures {
  events: number;
  /** Per event: its arrival at the client minus the wall-clock time the container stamped in it. */
  latency: LatencySummary;
  /** Events over the time from the first event the client read to the last. */
  eventsPerSecond: number;
  /** Events over the time from the start of the request to the last event read. */
  eventsPerSecondFromStart: number;
  /** From the start of the request to the first event read, in ms. */
  firstEventMs: number;
}

/**
 * POSTs and reads an SSE body, timing each event against the wall-clock stamp the container put
 * in it. An event counts as read when the chunk that completes it arrives.
 */
export async function readEvents(url: string, headers: Record<string, string>, body?: string): Promise<StreamFigures> {
  const started = nowMs();
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
    eventsPerSecondFromStart: latencies.length / Math.max(1e-3, (last - started) / 1000),
    firstEventMs: first - started,
  };
}
