import { WORKER_OWNED } from '../../src/shared/headers.js';
import { encodeFrame } from '../../src/shared/frame-codec.js';
import { containerAct, SPOOF } from './fuzz-acts.js';
import type { Random } from './random.js';

/**
 * Hostile invocations, generated from a seed. Each case says what a correct worker must do:
 * `none` (not addressable: no request id and reply subject can be read, so it is only dropped),
 * `bad-request` (a 400 problem at its reply subject) or `answer` (a final of any status; an
 * error must be a problem with a detail). Expectations come from the protocol's written rules,
 * not from the worker's code.
 */

export type Expect = 'none' | 'bad-request' | 'answer';

export interface FrameCase {
  id: number;
  label: string;
  data: Buffer;
  replyTo?: string;
  requestId?: string;
  expect: Expect;
  /** Its final must carry this (its own request id, echoed): another request's answer must never land here. */
  mustCarry?: string;
}

export interface FuzzTarget {
  functionId: string;
  versionId: string;
  /** Where large results of this case may be uploaded. */
  storageUrl: (key: string) => string;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const REPLY_RE = /^nvcf\.rs\.[A-Za-z0-9_-]{1,128}(\.[A-Za-z0-9_-]{1,128})?$/;

type Meta = Record<string, unknown>;
type Effect = 'unaddressable' | 'invalid' | 'valid';
type Mutation = (meta: Meta, rng: Random, t: FuzzTarget) => Effect;

function validMeta(rng: Random, t: FuzzTarget, requestId: string): Meta {
  return {
    v: 1,
    requestId,
    functionId: t.functionId,
    functionVersionId: t.versionId,
    ncaId: 'nca-fuzz',
    subject: 'fuzzer',
    method: 'POST',
    path: '/infer',
    headers: [['Content-Type', 'application/json']],
    assets: [],
    requestTime: Date.now(),
    pollSeconds: 60,
    largeResult: { uploadUrl: t.storageUrl(`${requestId}.zip`), downloadUrl: t.storageUrl(`${requestId}.zip`) },
    replyTo: `nvcf.rs.fuzz.${requestId}`,
  };
}

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

const mutations: Mutation[] = [
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
function hostileHeaders(rng: Random): { headers: unknown; effect: Effect } {
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

function frame(meta: Meta, body: Buffer | string): Buffer {
  return Buffer.from(encodeFrame(meta, Buffer.from(body)));
}

function addressOf(meta: Meta): { requestId?: string; replyTo?: string } {
  const ok =
    typeof meta.requestId === 'string' &&
    UUID_RE.test(meta.requestId) &&
    typeof meta.replyTo === 'string' &&
    REPLY_RE.test(meta.replyTo);
  return ok ? { requestId: meta.requestId as string, replyTo: meta.replyTo as string } : {};
}

/** One case; `id` also seeds nothing: the generator's stream alone decides the case. */
function snapshot(meta: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(meta).map(([key, value]) => [key, JSON.stringify(value) ?? 'undefined']));
}

export function generateCase(id: number, rng: Random, t: FuzzTarget): FrameCase {
  const requestId = rng.uuid();
  const meta = validMeta(rng, t, requestId);
  const roll = rng.next();
  if (roll < 0.1) {
    const data = rng.chance(0.5)
      ? rng.bytes(rng.int(0, 2048))
      : Buffer.from(rng.pick(['', '\n', '[]\n', 'null\n', '{"v":1}\n', '{"v":1,"requestId":', '"\\n"\n', '\uffff\n']));
    return { id, label: 'garbage bytes', data, expect: 'none' };
  }
  if (roll < 0.15) {
    const whole = frame(meta, `{"rid":"${requestId}","act":"echo"}`);
    const metaLength = whole.indexOf(0x0a);
    const cut = rng.int(0, whole.length - 1);
    return {
      id,
      label: 'truncated frame',
      data: whole.subarray(0, cut),
      ...(cut > metaLength ? { ...addressOf(meta), expect: 'answer' as const } : { expect: 'none' as const }),
    };
  }
  if (roll < 0.2) {
    // Bodies and metadata near NATS max_payload (1 MiB).
    const big = rng.pick(['body', 'headers', 'path']);
    if (big === 'body')
      return {
        id,
        label: 'near-limit body',
        data: frame(meta, Buffer.alloc(rng.int(900_000, 980_000), 0x61)),
        ...addressOf(meta),
        expect: 'answer',
      };
    if (big === 'headers') {
      meta.headers = Array.from({ length: 256 }, (_, i) => [`X-Big-${i}`, 'v'.repeat(3_800)]);
      return { id, label: 'near-limit headers', data: frame(meta, '{}'), ...addressOf(meta), expect: 'answer' };
    }
    meta.path = `/${'p'.repeat(600_000)}`;
    return { id, label: 'oversize path', data: frame(meta, '{}'), ...addressOf(meta), expect: 'bad-request' };
  }
  if (roll < 0.6) {
    // A later mutation of the same field replaces an earlier one (an invalid asset list that is
    // then swapped for a valid one is valid), so effects are kept per field they touched.
    const byField = new Map<string, Effect>();
    const labels: string[] = [];
    for (let i = rng.int(1, 3); i > 0; i--) {
      const index = rng.int(0, mutations.length - 1);
      labels.push(`m${index}`);
      const before = snapshot(meta);
      const e = mutations[index]!(meta, rng, t);
      const after = snapshot(meta);
      for (const field of new Set([...Object.keys(before), ...Object.keys(after)]))
        if (before[field] !== after[field]) byField.set(field, e);
    }
    const effects = [...byField.values()];
    const effect: Effect = effects.includes('unaddressable')
      ? 'unaddressable'
      : effects.includes('invalid')
        ? 'invalid'
        : 'valid';
    const address = addressOf(meta);
    const expect: Expect = !address.replyTo ? 'none' : effect === 'valid' ? 'answer' : 'bad-request';
    return {
      id,
      label: `mutated ${labels.join('+')}`,
      data: frame(meta, `{"rid":"${requestId}","act":"echo"}`),
      ...address,
      expect,
    };
  }
  if (roll < 0.8) {
    const { headers, effect } = hostileHeaders(rng);
    meta.headers = headers;
    return {
      id,
      label: 'hostile headers',
      data: frame(meta, JSON.stringify({ rid: requestId, act: 'echo' })),
      ...addressOf(meta),
      expect: effect === 'valid' ? 'answer' : 'bad-request',
    };
  }
  const act = containerAct(rng);
  return {
    id,
    label: `container ${act.act}`,
    data: frame(meta, JSON.stringify({ rid: requestId, ...act })),
    ...addressOf(meta),
    expect: 'answer',
  };
}

/** The one case that writes many tiny output files. */
export function manyFilesCase(id: number, rng: Random, t: FuzzTarget, count: number): FrameCase {
  const requestId = rng.uuid();
  const meta = validMeta(rng, t, requestId);
  meta.pollSeconds = 3600;
  return {
    id,
    label: `${count} tiny output files`,
    data: frame(meta, JSON.stringify({ rid: requestId, act: 'many-files', count })),
    ...addressOf(meta),
    expect: 'answer',
  };
}

/**
 * A live request and a frame that names the live request's reply subject as its own: anyone
 * who may publish work could try to answer someone else's caller. The victim is slow, so the
 * intruder's answer would arrive first; the victim's one final must still be its own echo.
 */
export function hijackCases(id: number, rng: Random, t: FuzzTarget): FrameCase[] {
  const victimId = rng.uuid();
  const victim = validMeta(rng, t, victimId);
  const intruderId = rng.uuid();
  const intruder = validMeta(rng, t, intruderId);
  intruder.replyTo = victim.replyTo;
  if (rng.chance(0.5)) intruder.headers = [['X-Bad', 'a\nb']]; // a 400 would land on the victim too
  return [
    {
      id,
      label: 'victim of a borrowed reply subject',
      data: frame(victim, JSON.stringify({ rid: victimId, act: 'sleep', ms: 1_500 })),
      ...addressOf(victim),
      expect: 'answer',
      mustCarry: victimId,
    },
    {
      id: id + 1,
      label: 'reply subject of another live request',
      data: frame(intruder, JSON.stringify({ rid: intruderId, act: 'echo' })),
      expect: 'none',
    },
  ];
}
