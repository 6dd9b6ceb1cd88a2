import { describe, expect, it } from 'vitest';
import { invocationFor } from '../support/env.js';
import { useRig } from '../support/rig.js';

describe('the request the container receives', () => {
  const rig = useRig({ worker: true });

  it('carries exactly the worker-owned NVCF headers with their values, written upper-case', async () => {
    const invocation = invocationFor(rig.worker.env, { pollSeconds: 60, requestTime: Date.now() - 5_000 });
    await rig.client.result(await rig.client.invoke(invocation, Buffer.from('{}')));
    const seen = rig.container.seen.at(-1)!;
    const nvcf = Object.fromEntries(seen.rawHeaders.filter(([n]) => /^nvcf-/i.test(n)));
    const env = rig.worker.env;
    expect(nvcf).toEqual({
      'NVCF-REQID': invocation.requestId,
      'NVCF-SUB': 'client-sub',
      'NVCF-NCAID': 'nca-caller',
      'NVCF-FUNCTION-NAME': 'test-function',
      'NVCF-FUNCTION-ID': env.FUNCTION_ID,
      'NVCF-FUNCTION-VERSION-ID': env.FUNCTION_VERSION_ID,
      'NVCF-ASSET-DIR': `${env.BASE_ASSET_DIR}/${invocation.requestId}`,
      'NVCF-LARGE-OUTPUT-DIR': `${env.BASE_RESPONSE_DIR}/${invocation.requestId}`,
      'NVCF-MAX-RESPONSE-SIZE-BYTES': '5242880',
      'NVCF-NSPECTID': 'NSPECT-TEST',
      'NVCF-BACKEND': 'DGXCLOUD',
      'NVCF-INSTANCETYPE': 'TEST.GPU.L40',
      'NVCF-REGION': 'us-test-1a',
      'NVCF-ENV': 'test',
      'NVCF-POLL-SECONDS': expect.stringMatching(/^5[45]$/),
    });
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/infer');
  });

  it('replaces client-sent worker-owned headers and drops Authorization and hop-by-hop headers', async () => {
    const invocation = invocationFor(rig.worker.env, {
      headers: [
        ['NVCF-NCAID', 'spoofed-org'],
        ['nvcf-reqid', 'spoofed-id'],
        ['NVCF-ASSET-DIR', '/etc'],
        ['NVCF-FUNCTION-ASSET-IDS', 'spoofed'],
        ['Authorization', 'Bearer secret-key'],
        ['Connection', 'keep-alive, X-Hop'],
        ['X-Hop', 'listed in Connection'],
        ['Keep-Alive', 'timeout=5'],
        ['TE', 'trailers'],
        ['Upgrade', 'websocket'],
        ['Proxy-Authorization', 'Basic x'],
        ['Accept', 'application/json'],
        ['X-Custom', 'kept'],
      ],
    });
    await rig.client.result(await rig.client.invoke(invocation, Buffer.from('{}')));
    const seen = rig.container.seen.at(-1)!;
    const names = seen.rawHeaders.map(([n]) => n.toLowerCase());
    expect(seen.headers['nvcf-ncaid']).toBe('nca-caller');
    expect(seen.headers['nvcf-reqid']).toBe(invocation.requestId);
    expect(seen.headers['nvcf-asset-dir']).toBe(`${rig.worker.env.BASE_ASSET_DIR}/${invocation.requestId}`);
    expect(names.filter((n) => n === 'nvcf-ncaid' || n === 'nvcf-reqid')).toHaveLength(2);
    expect(names).not.toContain('nvcf-function-asset-ids');
    for (const dropped of ['authorization', 'x-hop', 'keep-alive', 'te', 'upgrade', 'proxy-authorization'])
      expect(names).not.toContain(dropped);
    expect(seen.headers['x-custom']).toBe('kept');
    expect(seen.headers.accept).toBe('application/json');
  });

  it('defaults Content-Type to application/json in compatibility mode', async () => {
    await rig.client.result(
      await rig.client.invoke(invocationFor(rig.worker.env, { headers: [] }), Buffer.from('{"a":1}')),
    );
    expect(rig.container.seen.at(-1)!.headers['content-type']).toBe('application/json');
  });

  it('forwards the client method and a path with its query', async () => {
    await rig.client.result(
      await rig.client.invoke(
        invocationFor(rig.worker.env, { method: 'PUT', path: '/v2/models/m/infer?x=1&y=%20' }),
        Buffer.from('{}'),
      ),
    );
    expect(rig.container.seen.at(-1)!.method).toBe('PUT');
    expect(rig.container.seen.at(-1)!.url).toBe('/v2/models/m/infer?x=1&y=%20');
  });
});
