import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { WORKER_OWNED } from '../../src/shared/headers.js';
import { SPOOF, containerAct } from './fuzz-acts.js';
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

export interface GatewayTarget {
  url: string;
  functionId: string;
  versionId: string;
  /** An asset that was created and uploaded, and one that was created and never uploaded. */
  uploadedAsset: string;
  emptyAsset: string;
  /** A string that must never come back from the gateway (the canary files' content). */
  marker: string;
}

interface GatewayCase {
  id: number;
  label: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  path: string;
  headers: [string, string][];
  body?: Buffer;
  expect: 'refused' | 'answer';
  /** For an answer: the body a 200 must carry (the fuzz container echoes what it got). */
  echo?: Buffer;
}

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

export function generateGatewayCase(id: number, rng: Random, t: GatewayTarget): GatewayCase {
  const invokePath = rng.chance(0.5)
    ? `/v2/nvcf/pexec/functions/${t.functionId}`
    : `/v2/nvcf/pexec/functions/${t.functionId.toUpperCase()}/versions/${t.versionId}`;
  const base = {
    id,
    method: 'POST' as const,
    path: invokePath,
    headers: [['Content-Type', 'application/json']] as [string, string][],
  };
  const roll = rng.next();
  if (roll < 0.35) {
    // A well-formed call that also tries to set what only the worker may set.
    const headers = [...base.headers, ['NVCF-POLL-SECONDS', String(rng.int(1, 5))]] as [string, string][];
    for (let i = rng.int(1, 4); i > 0; i--) {
      const name = rng.pick(WORKER_OWNED);
      headers.push([rng.pick([name, name.toLowerCase()]), `${SPOOF}-${rng.pick(['/etc', '..', '0', 'x'])}`]);
    }
    if (rng.chance(0.3)) headers.push(['X-Latin-1', 'caf\u00e9 \u00ff']);
    if (rng.chance(0.2)) headers.push(['NVCF-INPUT-ASSET-REFERENCES', t.uploadedAsset]);
    const act = rng.chance(0.5) ? { act: 'echo' as const } : containerAct(rng);
    const body = Buffer.from(JSON.stringify(act));
    return {
      ...base,
      label: `spoofed headers, container ${act.act}`,
      headers,
      body,
      expect: 'answer',
      ...(act.act === 'echo' ? { echo: body } : {}),
    };
  }
  if (roll < 0.43) {
    // Past NATS's max_payload: the gateway keeps the body and the worker fetches it by URL.
    const body = rng.bytes(rng.int(1_100_000, 2_000_000));
    return {
      ...base,
      label: 'body over the frame limit',
      headers: [
        ['Content-Type', 'application/octet-stream'],
        ['NVCF-POLL-SECONDS', '5'],
      ],
      body,
      expect: 'answer',
      echo: body,
    };
  }
  if (roll < 0.44)
    return {
      ...base,
      label: 'body over the request limit',
      body: Buffer.alloc(16 * 1024 * 1024 + 1, 0x20),
      expect: 'refused',
    };
  if (roll < 0.54) {
    const fn = rng.pick([
      'not-a-uuid',
      rng.uuid(),
      '..%2F..%2Fetc%2Fpasswd',
      '%zz',
      'x'.repeat(5000),
      `${t.functionId}%00`,
      '%2e%2e',
    ]);
    const path = rng.chance(0.5)
      ? `/v2/nvcf/pexec/functions/${fn}`
      : `/v2/nvcf/pexec/functions/${t.functionId}/versions/${rng.pick([fn, rng.uuid()])}`;
    return { ...base, label: 'unknown or malformed function', path, body: Buffer.from('{}'), expect: 'refused' };
  }
  if (roll < 0.62) {
    // 0 is not here: like NVCF, the gateway takes it as 1.
    const value = rng.pick(['3601', '-1', '1.5', 'abc', '1e3', '99999999999999999999', '5;x']);
    return {
      ...base,
      label: `NVCF-POLL-SECONDS ${value}`,
      headers: [...base.headers, ['NVCF-POLL-SECONDS', value]],
      body: Buffer.from('{}'),
      expect: 'refused',
    };
  }
  if (roll < 0.7) {
    const value = rng.pick([
      '../../etc/passwd',
      rng.uuid(),
      'a,b',
      t.emptyAsset,
      `${t.uploadedAsset},${rng.uuid()}`,
      Array.from({ length: 65 }, () => rng.uuid()).join(','),
      `${t.uploadedAsset}/../x`,
    ]);
    return {
      ...base,
      label: 'bad asset reference',
      headers: [...base.headers, ['NVCF-INPUT-ASSET-REFERENCES', value]],
      body: Buffer.from('{}'),
      expect: 'refused',
    };
  }
  if (roll < 0.8) {
    const requestId = rng.pick([
      '..',
      rng.uuid(),
      rng.uuid().toUpperCase(),
      'x'.repeat(300),
      '%00',
      '%2e%2e%2f%2e%2e',
      'null',
    ]);
    return {
      id,
      label: "status of a request that is not the caller's",
      method: 'GET',
      path: `/v2/nvcf/pexec/status/${requestId}`,
      headers: [['NVCF-POLL-SECONDS', '1']],
      expect: 'refused',
    };
  }
  if (roll < 0.87) {
    const pick = rng.pick<[GatewayCase['method'], string]>([
      ['GET', invokePath],
      ['DELETE', `/v2/nvcf/pexec/status/${rng.uuid()}`],
      ['POST', '/v2/nvcf/../../etc/passwd'],
      ['GET', '/v2/nvcf/pexec/functions'],
      ['PUT', '/v2/nvcf/functions'],
    ]);
    return {
      id,
      label: `${pick[0]} ${pick[1].slice(0, 40)}`,
      method: pick[0],
      path: pick[1],
      headers: [],
      expect: 'refused',
    };
  }
  if (roll < 0.94) {
    const kind = rng.pick(['results', 'assets', 'bodies', '..']);
    const query = rng.pick(['', '?sig=forged&exp=9999999999', `?exp=1&sig=${'0'.repeat(64)}`, '?sig=&exp=']);
    const method = rng.pick(['GET', 'PUT'] as const);
    return {
      id,
      label: `${method} storage with a forged signature`,
      method,
      path: `/v2/nvcf/storage/${kind}/${rng.uuid()}${query}`,
      headers: [['Content-Type', 'application/octet-stream']],
      ...(method === 'PUT' ? { body: Buffer.from('overwrite') } : {}),
      expect: 'refused',
    };
  }
  const body = rng.pick([
    'not json',
    '{"contentType": ""}',
    '{}',
    '{"contentType": "x"}',
    `{"contentType": "image/png", "description": "${'d'.repeat(2000)}"}`,
    `{"contentType": "${'a'.repeat(300)}/b"}`,
    '[]',
    'null',
  ]);
  return {
    id,
    label: 'malformed asset request',
    method: 'POST',
    path: '/v2/nvcf/assets',
    headers: [['Content-Type', 'application/json']],
    body: Buffer.from(body),
    expect: 'refused',
  };
}

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
