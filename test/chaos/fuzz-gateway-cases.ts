import { WORKER_OWNED } from '../../src/shared/headers.js';
import { SPOOF, containerAct } from './fuzz-acts.js';
import type { Random } from './random.js';

/**
 * The gateway fuzzer's cases, generated from a seed: each is one hostile HTTP call and what a
 * correct gateway must answer to it (`refused`: a 4xx problem with a detail; `answer`: polled
 * to a final that is never the gateway's own 500).
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

export interface GatewayCase {
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
