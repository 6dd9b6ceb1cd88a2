import { describe, expect, it } from 'vitest';
import {
  containerRequestHeaders,
  queueableClientHeaders,
  relayableResponseHeaders,
  wantsPassThrough,
  type WorkerHeaderValues,
} from '../../src/shared/headers.js';

const owned: WorkerHeaderValues = {
  requestId: 'req',
  subject: 'sub',
  ncaId: 'nca',
  functionName: 'fn',
  functionId: 'fid',
  functionVersionId: 'fvid',
  assetDir: '/a/req',
  largeOutputDir: '/r/req',
  maxResponseSizeBytes: 5242880,
  nspectId: '',
  backend: 'B',
  instanceType: 'I',
  region: 'R',
  environment: 'E',
  assetIds: [],
  pollSecondsLeft: 42,
};

describe('headers for the container', () => {
  it('sends NVCF-FUNCTION-ASSET-IDS only when there are assets, comma-joined in order', () => {
    expect(containerRequestHeaders([], owned, true).map(([n]) => n)).not.toContain('NVCF-FUNCTION-ASSET-IDS');
    const withAssets = containerRequestHeaders([], { ...owned, assetIds: ['b', 'a'] }, true);
    expect(withAssets).toContainEqual(['NVCF-FUNCTION-ASSET-IDS', 'b,a']);
  });

  it('drops worker-owned names whatever their case, and keeps the gateway-owned invocation region', () => {
    const out = containerRequestHeaders(
      [
        ['nvcf-Poll-Seconds', '9999'],
        ['Nvcf-Env', 'x'],
        ['NVCF-INVOCATION-REGION', 'us-east-1'],
      ],
      owned,
      true,
    );
    expect(out.filter(([n]) => n.toLowerCase() === 'nvcf-poll-seconds')).toEqual([['NVCF-POLL-SECONDS', '42']]);
    expect(out.filter(([n]) => n.toLowerCase() === 'nvcf-env')).toEqual([['NVCF-ENV', 'E']]);
    expect(out).toContainEqual(['NVCF-INVOCATION-REGION', 'us-east-1']);
  });

  it('drops Host, Content-Length and Expect, which the next hop recomputes', () => {
    const out = containerRequestHeaders(
      [
        ['Host', 'evil'],
        ['Content-Length', '5'],
        ['Expect', '100-continue'],
      ],
      owned,
      true,
    );
    expect(out.some(([n]) => ['host', 'content-length', 'expect'].includes(n.toLowerCase()))).toBe(false);
  });

  it('keeps repeated client headers', () => {
    const out = containerRequestHeaders(
      [
        ['X-Tag', 'a'],
        ['X-Tag', 'b'],
      ],
      owned,
      true,
    );
    expect(out.filter(([n]) => n === 'X-Tag')).toEqual([
      ['X-Tag', 'a'],
      ['X-Tag', 'b'],
    ]);
  });

  it('leaves Content-Type alone in pass-through mode', () => {
    expect(containerRequestHeaders([], owned, false).some(([n]) => n.toLowerCase() === 'content-type')).toBe(false);
    expect(containerRequestHeaders([['content-type', 'text/plain']], owned, true)).toContainEqual([
      'content-type',
      'text/plain',
    ]);
  });
});

describe('choosing pass-through', () => {
  it.each([
    [[['Accept', 'text/event-stream']], false, true],
    [[['accept', 'application/json, text/event-stream;q=0.9']], false, true],
    [[['nvcf-feature-disable-worker-compatibility', 'TRUE']], false, true],
    [[['nvcf-feature-disable-worker-compatibility', 'false']], false, false],
    [[['Accept', 'application/json']], false, false],
    [[], true, true],
  ] as const)('headers %j with the worker switch %s → %s', (headers, always, expected) => {
    expect(
      wantsPassThrough(
        headers.map(([n, v]) => [n, v] as [string, string]),
        always,
      ),
    ).toBe(expected);
  });
});

describe('response headers relayed to the caller', () => {
  it('drops framing and hop-by-hop headers and keeps repeated ones', () => {
    const out = relayableResponseHeaders({
      'content-length': '3',
      'transfer-encoding': 'chunked',
      connection: 'x-private',
      'x-private': '1',
      'set-cookie': ['a=1', 'b=2'],
      'x-kept': 'yes',
    });
    expect(out).toEqual([
      ['set-cookie', 'a=1'],
      ['set-cookie', 'b=2'],
      ['x-kept', 'yes'],
    ]);
  });
});

describe('client headers a gateway queues', () => {
  it('drop credentials, hop-by-hop headers and a client-sent invocation region, and keep the rest', () => {
    const out = queueableClientHeaders([
      ['Authorization', 'Bearer k'],
      ['Connection', 'x-hop'],
      ['X-Hop', '1'],
      ['Transfer-Encoding', 'chunked'],
      ['NVCF-INVOCATION-REGION', 'spoofed'],
      ['NVCF-POLL-SECONDS', '5'],
      ['Accept', 'text/event-stream'],
    ]);
    expect(out).toEqual([
      ['NVCF-POLL-SECONDS', '5'],
      ['Accept', 'text/event-stream'],
    ]);
  });
});
