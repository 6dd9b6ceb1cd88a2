import { request } from 'undici';
import type { Random } from './random.js';

/**
 * Two clients of one gateway, each with its own API key: the second asks for the first one's
 * live request by id. It must get a 404 (the request is not its to see), and the owner must
 * still get its own result afterwards.
 */

/** The gateway setting that lists the accepted API keys, one per client, as `name:key`. */
export const API_KEYS_ENV = 'GATEWAY_API_KEYS';
const CLIENT_KEYS = ['nvapi-chaos-client-a', 'nvapi-chaos-client-b'] as const;
export const API_KEYS_VALUE = `client-a:${CLIENT_KEYS[0]},client-b:${CLIENT_KEYS[1]}`;

export interface CrossClientTarget {
  url: string;
  functionId: string;
  versionId: string;
}

async function call(url: string, method: 'GET' | 'POST', key: string, headers: Record<string, string>, body?: string) {
  const res = await request(url, {
    method,
    headers: { authorization: `Bearer ${key}`, ...headers },
    ...(body === undefined ? {} : { body }),
  });
  return {
    status: res.statusCode,
    requestId: res.headers['nvcf-reqid'] as string | undefined,
    body: await res.body.text(),
  };
}

/** Returns what went wrong; empty when every attempt was refused and every owner served. */
export async function crossClientCases(t: CrossClientTarget, rng: Random, count: number): Promise<string[]> {
  const [owner, other] = CLIENT_KEYS;
  const problems: string[] = [];
  for (let i = 0; i < count; i++) {
    // No `rid`: the gateway picks the request id, and the container checks a `rid` against it.
    const body = JSON.stringify({ token: rng.uuid(), act: 'sleep', ms: 1_500 });
    const invoke = `${t.url}/v2/nvcf/pexec/functions/${t.functionId}/versions/${t.versionId}`;
    const first = await call(
      invoke,
      'POST',
      owner,
      { 'nvcf-poll-seconds': '1', 'content-type': 'application/json' },
      body,
    );
    if (first.status !== 202 || !first.requestId) {
      problems.push(
        `cross-client ${i}: the owner's call was answered ${first.status} (not 202 with an id): ${first.body.slice(0, 120)}`,
      );
      continue;
    }
    const status = (key: string) =>
      call(`${t.url}/v2/nvcf/pexec/status/${first.requestId}`, 'GET', key, { 'nvcf-poll-seconds': '5' });
    const stolen = await status(other);
    if (stolen.status !== 404)
      problems.push(
        `cross-client ${i}: another client's key polled a live request and got ${stolen.status}${stolen.body.includes(body) ? ' with its result' : ''}`,
      );
    let mine = await status(owner);
    for (let polls = 0; mine.status === 202 && polls < 30; polls++) mine = await status(owner);
    if (mine.status !== 200 || mine.body !== body)
      problems.push(`cross-client ${i}: the owner then got ${mine.status}, not its own result`);
  }
  return problems;
}
