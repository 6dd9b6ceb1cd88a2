import { randomUUID } from 'node:crypto';
import { connect } from 'nats';
import { setTimeout as sleep } from 'node:timers/promises';
import { streams } from '../../src/shared/protocol.js';

/**
 * An NVCF client population: each request is a pexec POST followed by status polls, as a real
 * caller does, with a unique token in its body so a result for the wrong request is caught.
 * Connection errors (gateway away, restarting) are retried as a patient client would.
 */

export type Outcome = 'ok' | 'errored' | 'lost' | 'wrong';

export interface RequestRecord {
  index: number;
  token: string;
  requestId?: string;
  outcome?: Outcome;
  status?: number;
  detail?: string;
  startedAt: number;
  endedAt?: number;
}

export interface LoadOptions {
  gatewayUrl: string;
  functionId: string;
  versionId: string;
  count: number;
  concurrency: number;
  pollSeconds: number;
  /** Container time per request: a random value in [min, max] ms. */
  sleepMs: [number, number];
  /** A request still without a final this long after it started is counted lost. */
  giveUpMs: number;
  /** Called as requests finish, so a scenario can strike at a point in the run. */
  onFinished?: (done: number) => void;
}

export interface LoadResult {
  requests: RequestRecord[];
  counts: Record<Outcome, number>;
  maxLatencyMs: number;
  elapsedMs: number;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const requests: RequestRecord[] = [];
  let next = 0;
  let done = 0;
  const started = Date.now();
  const client = async () => {
    while (next < options.count) {
      const record: RequestRecord = { index: next++, token: randomUUID(), startedAt: Date.now() };
      requests.push(record);
      await invoke(options, record).catch((err: Error) =>
        finish(
          record,
          'errored',
          0,
          `client error: ${err.message}${err.cause ? ` (${String((err.cause as Error).message ?? err.cause)})` : ''}`,
        ),
      );
      options.onFinished?.(++done);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, client));
  const counts: Record<Outcome, number> = { ok: 0, errored: 0, lost: 0, wrong: 0 };
  for (const r of requests) counts[r.outcome ?? 'lost']++;
  const maxLatencyMs = Math.max(0, ...requests.map((r) => (r.endedAt ?? Date.now()) - r.startedAt));
  return { requests, counts, maxLatencyMs, elapsedMs: Date.now() - started };
}

function finish(record: RequestRecord, outcome: Outcome, status: number, detail?: string): void {
  if (record.outcome) return;
  Object.assign(record, { outcome, status, endedAt: Date.now(), ...(detail ? { detail } : {}) });
}

const retryable = (err: unknown) =>
  /ECONNREFUSED|ECONNRESET|socket|fetch failed|other side closed|terminated|UND_ERR/i.test(
    `${(err as Error).message} ${String((err as { cause?: unknown }).cause)}`,
  );

async function invoke(options: LoadOptions, record: RequestRecord): Promise<void> {
  const [min, max] = options.sleepMs;
  const body = JSON.stringify({ token: record.token, index: record.index });
  const giveUpAt = record.startedAt + options.giveUpMs;
  const headers = {
    'content-type': 'application/json',
    'nvcf-poll-seconds': String(options.pollSeconds),
    'x-sleep-ms': String(Math.round(min + Math.random() * (max - min))),
  };
  let res: Response | undefined;
  // Only a refused connection is retried: nothing was sent, so nothing can be queued twice.
  while (!res) {
    try {
      res = await fetch(
        `${options.gatewayUrl}/v2/nvcf/pexec/functions/${options.functionId}/versions/${options.versionId}`,
        { method: 'POST', headers, body },
      );
    } catch (err) {
      if (!/ECONNREFUSED/.test(String((err as { cause?: unknown }).cause)) || Date.now() > giveUpAt) throw err;
      await sleep(250);
    }
  }
  record.requestId = res.headers.get('nvcf-reqid') ?? undefined;
  for (;;) {
    if (res.status !== 202) return judge(record, res, body);
    await res.arrayBuffer();
    if (!record.requestId) return finish(record, 'errored', 202, '202 without NVCF-REQID');
    res = undefined;
    while (!res) {
      if (Date.now() > giveUpAt) return finish(record, 'lost', 0, `no final within ${options.giveUpMs} ms`);
      try {
        res = await fetch(`${options.gatewayUrl}/v2/nvcf/pexec/status/${record.requestId}`, {
          headers: { 'nvcf-poll-seconds': String(options.pollSeconds) },
        });
      } catch (err) {
        if (!retryable(err)) throw err;
        await sleep(250);
      }
    }
  }
}

async function judge(record: RequestRecord, res: Response, sent: string): Promise<void> {
  const text = await res.text();
  if (res.status === 200)
    return finish(record, text === sent ? 'ok' : 'wrong', 200, text === sent ? undefined : text.slice(0, 200));
  // A 404 on a status poll means the record is gone without this client having the result.
  if (res.status === 404 && record.requestId) return finish(record, 'lost', 404, text.slice(0, 300));
  finish(record, 'errored', res.status, text.slice(0, 300));
}

/**
 * Final messages per request in NVCF_RS, read from the stream itself: more than one for a
 * request would mean two runs both delivered a result.
 */
export async function finalsPerRequest(natsUrl: string): Promise<Map<string, number>> {
  const nc = await connect({ servers: natsUrl });
  const counts = new Map<string, number>();
  try {
    const js = nc.jetstream();
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(streams.results);
    if (info.state.messages === 0) return counts;
    const consumer = await js.consumers.get(streams.results, { filterSubjects: 'nvcf.rs.>' });
    const messages = await consumer.consume();
    for await (const msg of messages) {
      if (msg.subject.endsWith('.final')) {
        const key = msg.subject.slice(0, -'.final'.length);
        counts.set(key, (counts.get(key) ?? 0) + 1);
      }
      if (msg.info.pending === 0) break;
    }
  } finally {
    await nc.close();
  }
  return counts;
}

export function duplicatedFinals(counts: Map<string, number>): number {
  let extra = 0;
  for (const n of counts.values()) if (n > 1) extra++;
  return extra;
}
