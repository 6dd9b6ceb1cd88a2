import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  FrameError,
  ForeignReplyError,
  decodeInvocation,
  decodeResponse,
  encodeFrame,
  replyAddressOf,
  responseMetaProblem,
} from '../../src/shared/frame-codec.js';
import { WorkerState, functionStatus } from '../../src/shared/worker-state.js';

const invocation = () => {
  const requestId = randomUUID();
  return {
    v: 1,
    requestId,
    functionId: randomUUID(),
    functionVersionId: randomUUID(),
    method: 'POST',
    path: '/infer',
    requestTime: Date.now(),
    replyTo: `nvcf.rs.gw1.${requestId}`,
  };
};

describe('frames', () => {
  it('carry binary bodies byte for byte, newlines and all', () => {
    const body = Uint8Array.from([0, 10, 13, 255, 10, 10]);
    const decoded = decodeInvocation(encodeFrame(invocation(), body));
    expect(Buffer.from(decoded.body).equals(Buffer.from(body))).toBe(true);
  });

  it('fill in protocol defaults', () => {
    const { meta } = decodeInvocation(encodeFrame(invocation()));
    expect(meta).toMatchObject({ pollSeconds: 60, maxResponseSizeBytes: 5242880, headers: [], assets: [], ncaId: '' });
  });

  it.each([
    ['no newline', Buffer.from('{"v":1}')],
    ['metadata that is not JSON', Buffer.from('{v:1}\nbody')],
    ['metadata that is not UTF-8', Buffer.from([0xff, 0xfe, 0x0a])],
  ])('reject %s with a FrameError', (_label, data) => {
    expect(() => decodeInvocation(data)).toThrow(FrameError);
  });

  it('reject unknown fields, so a misspelt option is an error', () => {
    expect(() => decodeInvocation(encodeFrame({ ...invocation(), pollSecond: 5 }))).toThrow(/Unrecognized key/);
  });

  it('reject a body both inline and by URL', () => {
    expect(() =>
      decodeInvocation(encodeFrame({ ...invocation(), bodyUrl: 'http://127.0.0.1:1/b' }, Buffer.from('x'))),
    ).toThrow(/no inline body/);
  });

  it.each([
    ['a reply subject outside nvcf.rs', { replyTo: 'nvcf.rq.x.y' }],
    ['a path that is not absolute', { path: 'infer' }],
    ['a path with a space', { path: '/a b' }],
    ['a poll window over an hour', { pollSeconds: 3601 }],
    ['an asset id that is not a UUID', { assets: [{ assetId: '../../etc', url: 'http://127.0.0.1/x' }] }],
    ['an asset URL that is not http', { assets: [{ assetId: randomUUID(), url: 'file:///etc/passwd' }] }],
    ['a header name with a colon', { headers: [['X:Y', 'v']] }],
  ])('reject %s', (_label, change) => {
    expect(() => decodeInvocation(encodeFrame({ ...invocation(), ...change }))).toThrow(FrameError);
  });

  it('keep what was readable of a bad message, so an error can be addressed', () => {
    try {
      decodeInvocation(encodeFrame({ requestId: 'r1', replyTo: 'nvcf.rs.r1', method: 7 }));
    } catch (err) {
      expect(replyAddressOf((err as FrameError).partial)).toEqual({ replyTo: 'nvcf.rs.r1', requestId: 'r1' });
      return;
    }
    throw new Error('expected a FrameError');
  });

  it("reject a reply subject that is not the request's own, and address no error to it", () => {
    const other = invocation();
    expect(() => decodeInvocation(encodeFrame({ ...invocation(), replyTo: other.replyTo }))).toThrow(ForeignReplyError);
    expect(replyAddressOf({ requestId: 'r1', replyTo: other.replyTo })).toBeUndefined();
  });

  it('do not address errors to subjects outside the response stream', () => {
    expect(replyAddressOf({ requestId: 'r', replyTo: 'nvcf.rq.fv.r' })).toBeUndefined();
    expect(replyAddressOf('text')).toBeUndefined();
  });

  it('name what makes a response unsendable, with the same check the reader applies', () => {
    const common = { v: 1, requestId: 'r', workerId: 'w', attempt: 1 };
    const headers = Array.from({ length: 257 }, (_, i) => [`x-${i}`, 'v']);
    expect(responseMetaProblem({ ...common, kind: 'final', status: 200, headers, chunks: 0 })).toMatch(/at most 256/);
    expect(responseMetaProblem({ ...common, kind: 'final', status: 200, headers: [], chunks: 0 })).toBeUndefined();
  });

  it('decode every response kind', () => {
    const common = { v: 1, requestId: 'r', workerId: 'w', attempt: 1 };
    expect(
      decodeResponse(encodeFrame({ ...common, kind: 'final', status: 200, headers: [], chunks: 0 })).meta,
    ).toMatchObject({ kind: 'final', streamed: false });
    expect(decodeResponse(encodeFrame({ ...common, kind: 'chunk', index: 3 }, Buffer.from('x'))).body.length).toBe(1);
    expect(() =>
      decodeResponse(encodeFrame({ ...common, kind: 'progress', percentComplete: 101, headers: [] })),
    ).toThrow(FrameError);
  });
});

describe('function status from worker records', () => {
  const now = 1_000_000;
  const record = (state: WorkerState['state'], age = 0): WorkerState => ({
    v: 1,
    workerId: `w-${Math.random()}`,
    functionId: 'f',
    functionVersionId: 'v',
    functionName: 'n',
    ncaId: '',
    state,
    capacity: 1,
    inFlight: 0,
    updatedAt: now - age,
  });

  it('refuse a record carrying anything beyond the documented fields, such as NATS credentials', () => {
    expect(WorkerState.safeParse(record('ready')).success).toBe(true);
    expect(WorkerState.safeParse({ ...record('ready'), nats: { user: 'u', pass: 'p' } }).success).toBe(false);
  });

  it.each([
    ['no workers', [], 'INACTIVE'],
    ['one ready worker among starting ones', [record('starting'), record('ready')], 'ACTIVE'],
    ['only starting workers', [record('starting'), record('unhealthy')], 'DEPLOYING'],
    ['only failed workers', [record('error'), record('error', 40_000)], 'ERROR'],
    ['a failed and a starting worker', [record('error'), record('starting')], 'DEPLOYING'],
    ['a ready worker that stopped beating', [record('ready', 20_000)], 'INACTIVE'],
    ['workers that stopped cleanly', [record('stopped')], 'INACTIVE'],
    ['a worker that failed longer ago than the record TTL', [record('error', 70_000)], 'INACTIVE'],
  ] as const)('is right for %s', (_label, records, expected) => {
    expect(functionStatus(records, now)).toBe(expected);
  });
});
