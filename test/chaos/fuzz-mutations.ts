import { WORKER_OWNED } from '../../src/shared/headers.js';
import { SPOOF } from './fuzz-acts.js';
import type { FuzzTarget } from './fuzz-cases.js';
import type { Random } from './random.js';

/**
 * The ways a fuzz case spoils a valid invocation, each with the effect the protocol's written
 * rules give it: `unaddressable` (no request id or reply subject can be read), `invalid` (a 400
 * at its reply subject) or `valid` (still an invocation the container must answer).
 */

export type Meta = Record<string, unknown>;
export type Effect = 'unaddressable' | 'invalid' | 'valid';
type Mutation = (meta: Meta, rng: Random, t: FuzzTarget) => Effect;

const hostileStrings = [
  '',
  ' ',
  'a\r\nNats-Msg-Id: x',
  '../../etc/passwd',
  '..',
  '/',
  'a/b',
  'a\u0000b',
  'nul\u0000',
  'x'.repeat(70_000),
  '\u202e',
  'é漢字',
  '%2e%2e%2f',
  'null',
  '{}',
];

const set =
  (field: string, value: unknown, effect: Effect): Mutation =>
  (meta) => ((meta[field] = value), effect);

export const mutations: Mutation[] = [
  (meta) => (delete meta.requestId, 'unaddressable'),
  (meta, rng) => ((meta.requestId = rng.pick<unknown>([...hostileStrings, 42, null, [], {}])), 'unaddressable'),
  (meta) => (delete meta.replyTo, 'unaddressable'),
  (meta, rng, t) => {
    // A reply subject aimed at the work queue or a wildcard must never be published to.
    meta.replyTo = rng.pick<unknown>([
      'nvcf.rs.>',
      'nvcf.rs.*',
      `nvcf.rq.${t.versionId}.x`,
      'nvcf.rs.a b',
      'nvcf.rs.a.b.c',
      '',
      7,
      `nvcf.rs.${'x'.repeat(200)}`,
    ]);
    return 'unaddressable';
  },
  (meta) => (delete meta.functionId, 'invalid'),
  (meta) => (delete meta.functionVersionId, 'invalid'),
  (meta, rng) => ((meta.functionVersionId = rng.uuid()), 'invalid'),
  (meta, rng) => ((meta.functionId = rng.pick(hostileStrings)), 'invalid'),
  (meta, rng) => ((meta.v = rng.pick<unknown>([0, 2, '1', null])), 'invalid'),
  (meta, rng) => {
    meta.method = rng.pick(['get', 'POST ', 'X'.repeat(17), '', 'PO\nST', 'PUT', 'DELETE', 'PATCH', 'GET']);
    return /^[A-Z]{1,16}$/.test(meta.method as string) ? 'valid' : 'invalid';
  },
  (meta, rng) => {
    const path = rng.pick([
      'no-slash',
      '/a b',
      '/nul\u0000',
      `/${'a'.repeat(9000)}`,
      '//evil.example/x',
      '/../../etc/passwd',
      'http://x/',
      '/?q=%00',
      '/\t',
      `/${'b'.repeat(8000)}`,
    ]);
    meta.path = path;
    return path.startsWith('/') && path.length <= 8192 && !/[\s\0]/.test(path) ? 'valid' : 'invalid';
  },
  (meta, rng) => ((meta[rng.pick(['extra', 'requestid', 'Path', '__proto__x'])] = 1), 'invalid'),
  (meta, rng) => ((meta.pollSeconds = rng.pick<unknown>([0, 3601, 1.5, '60', -1, null])), 'invalid'),
  (meta, rng) => ((meta.requestTime = rng.pick<unknown>([-1, 0, 'now', 1e20, 1.5])), 'invalid'),
  set('requestTime', Date.now() - 10_000_000, 'valid'), // expired: answered 500 without the container
  set('deadline', Date.now() - 1_000, 'valid'), // deadline already passed: 504
  (meta, rng) => ((meta.maxResponseSizeBytes = rng.pick<unknown>([0, -5, 'big', 1.5])), 'invalid'),
  set('maxResponseSizeBytes', 1, 'valid'), // everything becomes a large result
  (meta, rng) => (
    (meta.headers = rng.pick<unknown>(['x', [['a']], [[1, 2]], [['a', 'b', 'c']], { a: 'b' }])),
    'invalid'
  ),
  (meta, rng) => (
    (meta.assets = [
      { assetId: rng.pick(['../../etc/passwd', 'a/b', 'x\u0000', '..', 'x'.repeat(300)]), url: 'http://127.0.0.1:1/a' },
    ]),
    'invalid'
  ),
  (meta, rng) => (
    (meta.assets = [
      { assetId: rng.uuid(), url: rng.pick(['file:///etc/passwd', 'ftp://x/y', 'javascript:1', '/relative']) },
    ]),
    'invalid'
  ),
  (meta, rng) => ((meta.assets = [{ assetId: rng.uuid(), url: 'http://127.0.0.1:1/refused' }]), 'valid'), // download fails: 500
  (meta, rng) => {
    const id = rng.uuid();
    meta.assets = [
      { assetId: id, url: 'http://127.0.0.1:1/a' },
      { assetId: id.toUpperCase(), url: 'http://127.0.0.1:1/b' },
    ];
    return 'invalid';
  },
  (meta, rng) => (
    (meta.assets = Array.from({ length: 65 }, () => ({ assetId: rng.uuid(), url: 'http://127.0.0.1:1/a' }))),
    'invalid'
  ),
  set('bodyUrl', 'file:///etc/passwd', 'invalid'),
  set('bodyUrl', 'http://127.0.0.1:1/body', 'valid'), // unreachable body: 500
  set('largeResult', { uploadUrl: 'ftp://x/y', downloadUrl: 'http://127.0.0.1:1/' }, 'invalid'),
  set('ncaId', 'n'.repeat(257), 'invalid'),
  set('subject', 's'.repeat(1025), 'invalid'),
];

/** Client headers that must never reach the container as given, or make the invocation a 400. */
export function hostileHeaders(rng: Random): { headers: unknown; effect: Effect } {
  const headers: unknown[] = [['Content-Type', 'application/json']];
  let effect: Effect = 'valid';
  for (let i = rng.int(1, 6); i > 0; i--) {
    const roll = rng.int(0, 9);
    if (roll <= 3) {
      const name = rng.pick(WORKER_OWNED);
      headers.push([
        rng.pick([name, name.toLowerCase(), name.replace(/F/g, 'f')]),
        `${SPOOF}-${rng.pick(['/etc', '..', 'x', '0'])}`,
      ]);
    } else if (roll === 4) {
      headers.push(['X-Bad', rng.pick(['a\rb', 'a\nb', 'a\u0000b', '\r\nInjected: 1'])]);
      effect = 'invalid';
    } else if (roll === 5) {
      headers.push([rng.pick(['a b', 'x:y', '', 'ü', 'a\nb', '(x)']), 'v']);
      effect = 'invalid';
    } else if (roll === 6) {
      headers.push(['X-Long', 'v'.repeat(rng.pick([16 * 1024, 16 * 1024 + 1]))]);
      if ((headers.at(-1) as string[])[1]!.length > 16 * 1024) effect = 'invalid';
    } else if (roll === 7) {
      headers.push(
        rng.pick([
          ['Connection', 'NVCF-REQID, keep-alive'],
          ['Transfer-Encoding', 'chunked'],
          ['Content-Length', '5'],
          ['Host', 'evil.example'],
          ['Expect', '100-continue'],
          ['Authorization', `Bearer ${SPOOF}`],
        ]),
      );
    } else if (roll === 8) {
      for (let k = 0; k < 257; k++) headers.push([`X-Many-${k}`, 'v']);
      effect = 'invalid';
    } else {
      // Beyond Latin-1: no HTTP/1.1 field value can carry it, so the invocation is refused.
      headers.push(['X-Unicode', 'é漢字 \u202e']);
      effect = 'invalid';
    }
  }
  return { headers, effect };
}
