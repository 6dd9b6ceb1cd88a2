import { describe, expect, it } from 'vitest';
import { decodeResponse, encodeFrame } from '../../src/shared/frame-codec.js';
import { ResultAssembler, ResultAssemblyError } from '../../src/gateway/invocations/result-assembler.js';

const frame = (meta: Record<string, unknown>, body = '') =>
  decodeResponse(encodeFrame({ v: 1, requestId: 'r', workerId: 'w', attempt: 1, ...meta }, Buffer.from(body)));
const text = (bytes: Uint8Array) => Buffer.from(bytes).toString();

describe('assembling a result', () => {
  it('joins a chunked body in index order even when chunks arrive out of order', () => {
    const a = new ResultAssembler();
    a.push(frame({ kind: 'chunk', index: 1 }, 'world'));
    a.push(frame({ kind: 'chunk', index: 0 }, 'hello '));
    const [final] = a.push(frame({ kind: 'final', status: 200, headers: [], chunks: 2 }));
    expect(final).toMatchObject({ type: 'final', status: 200, streamed: false });
    expect(text((final as { body: Uint8Array }).body)).toBe('hello world');
  });

  it('uses only the chunks of the attempt that published the final', () => {
    const a = new ResultAssembler();
    a.push(frame({ kind: 'chunk', index: 0, attempt: 1 }, 'stale'));
    a.push(frame({ kind: 'chunk', index: 0, attempt: 2 }, 'fresh'));
    const [final] = a.push(frame({ kind: 'final', status: 200, headers: [], chunks: 1, attempt: 2 }));
    expect(text((final as { body: Uint8Array }).body)).toBe('fresh');
  });

  it('streams data in order as soon as each next chunk is there', () => {
    const a = new ResultAssembler();
    expect(
      a.push(frame({ kind: 'head', status: 200, headers: [['content-type', 'text/event-stream']] })).map((e) => e.type),
    ).toEqual(['head']);
    expect(a.push(frame({ kind: 'chunk', index: 1 }, 'b'))).toEqual([]);
    expect(a.push(frame({ kind: 'chunk', index: 0 }, 'a')).map((e) => e.type === 'data' && text(e.bytes))).toEqual([
      'a',
      'b',
    ]);
    expect(a.push(frame({ kind: 'final', status: 200, headers: [], chunks: 2, streamed: true }))).toMatchObject([
      { type: 'final', streamed: true },
    ]);
  });

  it('reports a stream that ended with chunks missing', () => {
    const a = new ResultAssembler();
    a.push(frame({ kind: 'head', status: 200, headers: [] }));
    expect(() => a.push(frame({ kind: 'final', status: 200, headers: [], chunks: 1, streamed: true }))).toThrow(
      ResultAssemblyError,
    );
  });

  it('reports only the first final and ignores anything after it', () => {
    const a = new ResultAssembler();
    expect(a.push(frame({ kind: 'final', status: 200, headers: [], chunks: 0 }, 'one'))).toHaveLength(1);
    expect(a.push(frame({ kind: 'final', status: 200, headers: [], chunks: 0, attempt: 2 }, 'two'))).toEqual([]);
    expect(a.push(frame({ kind: 'progress', percentComplete: 50, headers: [] }, '{}'))).toEqual([]);
  });
});
