import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { generateGatewayCase, type GatewayCase, type GatewayTarget } from './fuzz-gateway-cases.js';
import type { Random } from './random.js';

/**
 * Hostile calls to the gateway's HTTP API, as a client on the internet could make them: bad
 * function ids and paths, bad NVCF-* request headers, client-sent worker-owned headers, asset
 * references out of the asset store, bodies over the frame and request limits, forged storage
 * signatures, status polls for ids that are not theirs. Each case says what a correct gateway
 * must answer, from NVCF's documented contract: `refused` (a 4xx problem with a detail) or
 * `answer` (polled to a final: a 200, a 302 with a Location, or a problem with a detail, and
 * never the gateway's own 500).
 */

export interface GatewayFuzzReport {
  cases: number;
  answered: number;
  refused: number;
  /** An answer that breaks the case's expectation. */
  wrong: string[];
  /** 500s the gateway gave for its own failure. */
  gatewayErrors: string[];
  /** Cases with no final within the time allowed. */
  hung: string[];
  /** Responses or result archives carrying the canary marker. */
  leaks: string[];
  /** A client that got another client's live request, or an owner that then lost its own. */
  crossClient: string[];
  gatewayAlive: boolean;
}

const FINAL_WITHIN_MS = 120_000;

export async function runGatewayFuzz(
  t: GatewayTarget,
  rng: Random,
  count: number,
  concurrency: number,
  gatewayAlive: () => boolean,
): Promise<GatewayFuzzReport> {
  const report: GatewayFuzzReport = {
    cases: 0,
    answered: 0,
    refused: 0,
    wrong: [],
    gatewayErrors: [],
    hung: [],
    leaks: [],
    crossClient: [],
    gatewayAlive: true,
  };
  const cases = Array.from({ length: count }, (_, i) => generateGatewayCase(i, rng, t));
  let next = 0;
  const client = async () => {
    while (next < cases.length) {
      const c = cases[next++]!;
      report.cases++;
      await play(t, c, report).catch((err: Error) =>
        report.wrong.push(`case ${c.id} (${c.label}): client error ${err.message}`),
      );
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  report.gatewayAlive =
    gatewayAlive() &&
    (await request(`${t.url}/v1/health/live`).then(
      (r) => (r.body.dump(), r.statusCode === 200),
      () => false,
    ));
  return report;
}

async function play(t: GatewayTarget, c: GatewayCase, report: GatewayFuzzReport): Promise<void> {
  const giveUpAt = Date.now() + FINAL_WITHIN_MS;
  const where = `case ${c.id} (${c.label})`;
  let answer = await call(t.url, c.method, c.path, c.headers, c.body);
  const requestId = answer.headers['nvcf-reqid'];
  while (answer.status === 202 && typeof requestId === 'string') {
    if (Date.now() > giveUpAt) return void report.hung.push(`${where}: still 202 after ${FINAL_WITHIN_MS} ms`);
    answer = await call(t.url, 'GET', `/v2/nvcf/pexec/status/${requestId}`, [['NVCF-POLL-SECONDS', '5']]);
  }
  if (answer.body.includes(t.marker)) report.leaks.push(`${where}: the answer carries the canary`);
  const detail = problemDetail(answer);
  if (answer.status === 500 && detail?.startsWith('the gateway failed'))
    return void report.gatewayErrors.push(`${where}: ${detail.slice(0, 200)}`);
  if (c.expect === 'refused') {
    if (answer.status < 400 || answer.status > 499 || !detail)
      return void report.wrong.push(
        `${where}: expected a 4xx problem, got ${answer.status} ${answer.body.subarray(0, 120).toString()}`,
      );
    report.refused++;
    return;
  }
  report.answered++;
  if (answer.status === 200) {
    if (c.echo && !answer.body.equals(c.echo))
      report.wrong.push(`${where}: 200 with a body that is not its own (${answer.body.length} bytes)`);
  } else if (answer.status === 302) {
    const location = answer.headers.location;
    if (typeof location !== 'string') return void report.wrong.push(`${where}: 302 without a Location`);
    const zip = await request(location);
    const bytes = Buffer.from(await zip.body.arrayBuffer());
    if (zip.statusCode !== 200) report.wrong.push(`${where}: its 302 Location answered ${zip.statusCode}`);
    if (bytes.includes(t.marker)) report.leaks.push(`${where}: the result archive carries the canary`);
  } else if (answer.status < 400 || !detail) {
    report.wrong.push(`${where}: final ${answer.status} is neither a result nor a problem with a detail`);
  }
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

async function call(
  url: string,
  method: string,
  path: string,
  headers: [string, string][],
  body?: Buffer,
): Promise<Answer> {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await request(`${url}${path}`, {
        method: method as 'GET',
        headers: headers.flat(),
        ...(body ? { body } : {}),
        headersTimeout: 60_000,
        bodyTimeout: 60_000,
      });
      return { status: res.statusCode, headers: res.headers, body: Buffer.from(await res.body.arrayBuffer()) };
    } catch (err) {
      // A gateway that refuses a body over its limit may close the connection before reading it all.
      if (
        attempt >= 2 ||
        !/ECONNRESET|EPIPE|other side closed/i.test(
          String((err as Error).message) + String((err as { code?: string }).code),
        )
      )
        throw err;
      await sleep(100);
    }
  }
}

function problemDetail(answer: Answer): string | undefined {
  const type = String(answer.headers['content-type'] ?? '');
  if (!type.includes('application/problem+json')) return undefined;
  try {
    const detail = (JSON.parse(answer.body.toString()) as { detail?: unknown }).detail;
    return typeof detail === 'string' && detail.length > 0 ? detail : undefined;
  } catch {
    return undefined;
  }
}
