import { randomUUID } from 'node:crypto';
import { connect } from 'nats';
import { setTimeout as sleep } from 'node:timers/promises';
import { streams } from '../../src/shared/protocol.js';

/**
 * An NVCF client population: each request is a pexec POST followed by status polls, as a real
 * caller does, with a unique token in its body so a result for the wrong request is caught.
 * Connection errors (gateway away, restarting) are retried as a patient client would.
 */

/** `orphaned`: the call was cut before the client learnt a request id, so it can never ask again. */
type Outcome = 'ok' | 'errored' | 'lost' | 'wrong' | 'orphaned';

export interface RequestRecord {
  index: number;
  token: string;
  requestId?: string;
  outcome?: Outcome;
  status?: number;
  detail?: string;
  startedAt: number;
  endedAt?: number;
  /** Times its answer was cut off while the body was being read (it then polled again). */
  cutMidBody?: number;
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
  /** Share of calls that send their body in two halves some time apart (a slow upload). */
  slowBodyShare?: number;
  /** Share of calls whose answer is large (`bigCopies` copies of the body) and read slowly. */
  slowReadShare?: number;
  bigCopies?: number;
  /** Kept up to date with how many clients are reading an answer slowly right now. */
  live?: { slowReading: number };
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
          record.requestId ? 'errored' : 'orphaned',
          0,
          `client error: ${err.message}${err.cause ? ` (${String((err.cause as Error).message ?? err.cause)})` : ''}`,
        ),
      );
      options.onFinished?.(++done);
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, client));
  const counts: Record<Outcome, number> = { ok: 0, errored: 0, lost: 0, wrong: 0, orphaned: 0 };
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

/** A body sent in two halves, `gapMs` apart: the gateway holds a call whose body is still arriving. */
function trickle(body: string, gapMs: number): ReadableStream<Uint8Array> {
  const bytes = new TextEncoder().encode(body);
  const half = Math.floor(bytes.length / 2);
  let step = 0;
  return new ReadableStream({
    async pull(controller) {
      if (step === 0) controller.enqueue(bytes.subarray(0, half));
      else if (step === 1) {
        await sleep(gapMs);
        controller.enqueue(bytes.subarray(half));
      } else controller.close();
      step++;
    },
  });
}

async function invoke(options: LoadOptions, record: RequestRecord): Promise<void> {
  const [min, max] = options.sleepMs;
  const body = JSON.stringify({ token: record.token, index: record.index });
  const giveUpAt = record.startedAt + options.giveUpMs;
  const slowBody = Math.random() < (options.slowBodyShare ?? 0);
  const slowRead = Math.random() < (options.slowReadShare ?? 0);
  const copies = slowRead ? (options.bigCopies ?? 1) : 1;
  const headers = {
    'content-type': 'application/json',
    'nvcf-poll-seconds': String(options.pollSeconds),
    'x-sleep-ms': String(Math.round(min + Math.random() * (max - min))),
    ...(copies > 1 ? { 'x-echo-copies': String(copies) } : {}),
  };
  const expected = copies > 1 ? Array.from({ length: copies }, () => body).join('\n') : body;
  let res: Response | undefined;
  // Only a refused connection is retried: nothing was sent, so nothing can be queued twice.
  while (!res) {
    try {
      res = await fetch(
        `${options.gatewayUrl}/v2/nvcf/pexec/functions/${options.functionId}/versions/${options.versionId}`,
        slowBody
          ? { method: 'POST', headers, body: trickle(body, 300 + Math.random() * 700), duplex: 'half' }
          : { method: 'POST', headers, body },
      );
    } catch (err) {
      if (!/ECONNREFUSED/.test(String((err as { cause?: unknown }).cause)) || Date.now() > giveUpAt) throw err;
      await sleep(250);
    }
  }
  record.requestId = res.headers.get('nvcf-reqid') ?? undefined;
  for (;;) {
    try {
      if (res.status !== 202) return await judge(record, res, expected, slowRead && (options.live ?? true));
      await res.arrayBuffer();
    } catch (err) {
      // Cut in the middle of its answer: a client with a request id asks again.
      if (!record.requestId || !retryable(err)) throw err;
      record.cutMidBody = (record.cutMidBody ?? 0) + 1;
    }
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

/** Reads a body 64 KiB at a time with pauses, as a client on a slow link would. */
async function readSlowly(res: Response, live?: { slowReading: number }): Promise<string> {
  const reader = res.body!.getReader();
  const parts: Uint8Array[] = [];
  let since = 0;
  if (live) live.slowReading++;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      since += value.length;
      if (since >= 64 * 1024) {
        since = 0;
        await sleep(100);
      }
    }
  } finally {
    if (live) live.slowReading--;
  }
  return Buffer.concat(parts).toString();
}

async function judge(
  record: RequestRecord,
  res: Response,
  sent: string,
  slowly: { slowReading: number } | boolean = false,
): Promise<void> {
  const text =
    res.status === 200 && slowly ? await readSlowly(res, slowly === true ? undefined : slowly) : await res.text();
  if (res.status === 200)
    return finish(record, text === sent ? 'ok' : 'wrong', 200, text === sent ? undefined : text.slice(0, 200));
  // A 404 on a status poll means the record is gone without this client having the result.
  if (res.status === 404 && record.requestId) return finish(record, 'lost', 404, text.slice(0, 300));
  finish(record, 'errored', res.status, text.slice(0, 300));
}

export interface Finals {
  /** Final messages per request subject: more than one means two runs both delivered a result. */
  perRequest: Map<string, number>;
  /** The status of each final, by the load token its echoed body carries. */
  statusByToken: Map<string, number>;
}

/**
 * Every final message in NVCF_RS, read from the stream itself, up to the last sequence the
 * stream held when asked. On a cluster whose nodes were just killed and restarted, a reader
 * can stall (its consumer placed on a replica that then lost leadership), so a reader that
 * delivers nothing for a few seconds is replaced by a new one starting after the last message
 * seen; a read that cannot finish within a minute throws rather than hangs the suite.
 */
export async function readFinals(natsUrl: string, timeoutMs = 60_000): Promise<Finals> {
  const nc = await connect({ servers: natsUrl.split(',') });
  const finals: Finals = { perRequest: new Map(), statusByToken: new Map() };
  try {
    const js = nc.jetstream();
    const jsm = await nc.jetstreamManager();
    const { state } = await jsm.streams.info(streams.results);
    if (state.messages === 0) return finals;
    const deadline = Date.now() + timeoutMs;
    let seen = state.first_seq - 1;
    while (seen < state.last_seq) {
      if (Date.now() > deadline)
        throw new Error(`read NVCF_RS only to sequence ${seen} of ${state.last_seq} within ${timeoutMs} ms`);
      const reader = await js.consumers
        .get(streams.results, { filterSubjects: 'nvcf.rs.>', opt_start_seq: seen + 1 })
        .catch(() => undefined);
      if (!reader) {
        await sleep(500);
        continue;
      }
      for (;;) {
        const msg = await reader.next({ expires: 5_000 }).catch(() => null);
        if (!msg) {
          // Nothing came: either the reader stalled (a new one is made) or nothing is left to read.
          const left = await reader.info(false).then(
            (i) => i.num_pending,
            () => undefined,
          );
          if (left === 0) seen = state.last_seq;
          break;
        }
        seen = msg.seq;
        if (msg.subject.endsWith('.final')) countFinal(finals, msg.subject, msg.data);
        if (msg.info.pending === 0 || seen >= state.last_seq) {
          seen = Math.max(seen, state.last_seq);
          break;
        }
      }
    }
  } finally {
    await nc.close();
  }
  return finals;
}

function countFinal(finals: Finals, subject: string, data: Uint8Array): void {
  const key = subject.slice(0, -'.final'.length);
  finals.perRequest.set(key, (finals.perRequest.get(key) ?? 0) + 1);
  const text = Buffer.from(data).toString();
  const newline = text.indexOf('\n');
  const status = Number((/"status":(\d+)/.exec(text.slice(0, newline)) ?? [])[1]);
  const token = /"token":"([0-9a-f-]{36})"/.exec(text.slice(newline + 1))?.[1];
  if (token) finals.statusByToken.set(token, status);
}

export function duplicatedFinals(counts: Map<string, number>): number {
  let extra = 0;
  for (const n of counts.values()) if (n > 1) extra++;
  return extra;
}

/**
 * Callers told their request failed (a 5xx) whose request in fact succeeded: the final in
 * NVCF_RS for their token is a 2xx. Worse than an error, since a caller may well retry work that
 * was done, or give up on a result that is waiting.
 */
export function misreported(requests: RequestRecord[], finals: Finals): RequestRecord[] {
  return requests.filter((r) => {
    if (r.outcome !== 'errored' || (r.status ?? 0) < 500) return false;
    const final = finals.statusByToken.get(r.token);
    return final !== undefined && final >= 200 && final < 300;
  });
}
