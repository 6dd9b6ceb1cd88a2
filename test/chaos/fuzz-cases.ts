import { encodeFrame } from '../../src/shared/frame-codec.js';
import { containerAct } from './fuzz-acts.js';
import { hostileHeaders, mutations, type Effect, type Meta } from './fuzz-mutations.js';
import type { Random } from './random.js';

/**
 * Hostile invocations, generated from a seed. Each case says what a correct worker must do:
 * `none` (not addressable: no request id and reply subject can be read, so it is only dropped),
 * `bad-request` (a 400 problem at its reply subject) or `answer` (a final of any status; an
 * error must be a problem with a detail). Expectations come from the protocol's written rules,
 * not from the worker's code.
 */

type Expect = 'none' | 'bad-request' | 'answer';

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
