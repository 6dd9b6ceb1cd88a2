import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from 'nats';
import { streams } from '../../src/shared/protocol.js';
import type { Cluster } from './cluster.js';
import { withCluster } from './scenario-kit.js';

/**
 * Pressure that loses nothing but may grow a process without bound: a client reading an event
 * stream slowly while the container writes fast, and clients polling in a storm. Each scenario
 * records the memory of the process at risk and the server-side state it leaves behind.
 */

export interface PressureSize {
  /** Bytes the container writes in the slow-reader scenario, and how long the reader reads. */
  sseBytes: number;
  sseReadMs: number;
  /** Requests kept running in the poll storm, the polling clients, and how long they poll. */
  stormRequests: number;
  stormClients: number;
  stormMs: number;
}

export interface PressureRow {
  scenario: string;
  /** What was measured, as label → figure, in the order they are shown. */
  figures: [string, string][];
  /** Why this row fails the run, if it does. */
  failures: string[];
  notes: string[];
}

const MiB = 1024 * 1024;
const mib = (bytes: number) => `${(bytes / MiB).toFixed(0)} MiB`;
/** Growth past which a slow reader counts as unbounded buffering: far over any sane per-request bound. */
const SSE_GROWTH_LIMIT = 64 * MiB;

async function resultsStreamBytes(natsUrl: string): Promise<number> {
  const nc = await connect({ servers: natsUrl.split(',') });
  try {
    return (await (await nc.jetstreamManager()).streams.info(streams.results)).state.bytes;
  } finally {
    await nc.close();
  }
}

function invokeUrl(cluster: Cluster): string {
  return `${cluster.gateway.url}/v2/nvcf/pexec/functions/${cluster.functionId}/versions/${cluster.versionId}`;
}

/** 9. One client reads an SSE answer at 64 KiB/s while the container writes `sseBytes` as fast as it may. */
export function slowSseReader(size: PressureSize): Promise<PressureRow> {
  return withCluster({}, async (cluster) => {
    const eventBytes = 64 * 1024;
    const before = await cluster.gateway.memory();
    const streamBefore = await resultsStreamBytes(cluster.nats.url);
    const controller = new AbortController();
    const res = await fetch(invokeUrl(cluster), {
      method: 'POST',
      headers: {
        accept: 'text/event-stream',
        'content-type': 'application/json',
        'x-sse-events': String(Math.ceil(size.sseBytes / eventBytes)),
        'x-sse-event-bytes': String(eventBytes),
      },
      body: '{}',
      signal: controller.signal,
    });
    let read = 0;
    let peak = before.rss;
    const failures: string[] = [];
    if (res.status !== 200 || !res.body) failures.push(`the event stream was answered ${res.status}, not 200`);
    else {
      const reader = res.body.getReader();
      const sampler = setInterval(() => {
        void cluster.gateway.memory().then((m) => (peak = Math.max(peak, m.rss)));
      }, 500);
      const started = Date.now();
      try {
        while (Date.now() - started < size.sseReadMs) {
          // 64 KiB a second: wait while ahead of that pace.
          if (read >= (64 * 1024 * (Date.now() - started)) / 1000) {
            await sleep(100);
            continue;
          }
          const next = await Promise.race([reader.read(), sleep(size.sseReadMs).then(() => undefined)]);
          if (!next || next.done) break;
          read += next.value.length;
        }
      } finally {
        clearInterval(sampler);
      }
      controller.abort();
    }
    const streamAfter = await resultsStreamBytes(cluster.nats.url);
    const growth = peak - before.rss;
    if (growth > SSE_GROWTH_LIMIT)
      failures.push(`gateway RSS grew ${mib(growth)} for one slow reader (limit ${mib(SSE_GROWTH_LIMIT)})`);
    // The stream the workers publish into is shared by every request: one slow reader must not
    // fill it with the rest of its stream (it would hold up every other request's answer).
    if (streamAfter - streamBefore > read + SSE_GROWTH_LIMIT)
      failures.push(
        `NVCF_RS grew ${mib(streamAfter - streamBefore)} ahead of one slow reader that read ${mib(read)} (limit ${mib(SSE_GROWTH_LIMIT)} ahead)`,
      );
    return {
      scenario: 'slow SSE reader',
      figures: [
        ['container offered', mib(size.sseBytes)],
        ['client read', mib(read)],
        ['gateway RSS before → peak', `${mib(before.rss)} → ${mib(peak)}`],
        ['NVCF_RS grew', mib(streamAfter - streamBefore)],
      ],
      failures,
      notes: [`read at 64 KiB/s for ${size.sseReadMs / 1000} s, then disconnected`],
    };
  });
}

/**
 * 10. `stormRequests` requests kept running while `stormClients` clients poll their status with
 * a 1 s window, back to back. A poll must leave no state on the server: the consumers on NVCF_RS
 * once the storm is over, and nats-server's memory, must not grow with the number of polls.
 */
export function pollStorm(size: PressureSize): Promise<PressureRow> {
  return withCluster({}, async (cluster) => {
    const ids: string[] = [];
    for (let i = 0; i < size.stormRequests; i++) {
      const res = await fetch(invokeUrl(cluster), {
        method: 'POST',
        headers: { 'nvcf-poll-seconds': '1', 'x-sleep-ms': String(size.stormMs + 60_000) },
        body: `{"storm":${i}}`,
      });
      await res.arrayBuffer();
      const id = res.headers.get('nvcf-reqid');
      if (id) ids.push(id);
    }
    const consumersBefore = await cluster.nats.consumerCount(streams.results);
    const rssBefore = (await cluster.nats.rss())[0]!;
    let polls = 0;
    const statuses = new Map<number, number>();
    const until = Date.now() + size.stormMs;
    await Promise.all(
      Array.from({ length: size.stormClients }, async (_, c) => {
        while (Date.now() < until) {
          const id = ids[(c + polls) % ids.length]!;
          const res = await fetch(`${cluster.gateway.url}/v2/nvcf/pexec/status/${id}`, {
            headers: { 'nvcf-poll-seconds': '1' },
          }).catch(() => undefined);
          await res?.arrayBuffer();
          polls++;
          statuses.set(res?.status ?? 0, (statuses.get(res?.status ?? 0) ?? 0) + 1);
        }
      }),
    );
    // Waits that were open when the storm ended close within their 1 s window.
    await sleep(3_000);
    const consumersAfter = await cluster.nats.consumerCount(streams.results);
    const rssAfter = (await cluster.nats.rss())[0]!;
    const failures: string[] = [];
    if (consumersAfter > consumersBefore + size.stormClients)
      failures.push(
        `${consumersAfter} consumers on ${streams.results} after ${polls} polls (before the storm: ${consumersBefore}); polls leave state on the server`,
      );
    return {
      scenario: 'poll storm',
      figures: [
        ['polls', String(polls)],
        [`consumers on ${streams.results} before → after`, `${consumersBefore} → ${consumersAfter}`],
        ['nats-server RSS before → after', `${mib(rssBefore)} → ${mib(rssAfter)}`],
      ],
      failures,
      notes: [
        `${ids.length} requests running, ${size.stormClients} clients polling with a 1 s window for ${size.stormMs / 1000} s; answers: ${[...statuses].map(([s, n]) => `${n} × ${s || 'connection error'}`).join(', ')}`,
      ],
    };
  });
}
