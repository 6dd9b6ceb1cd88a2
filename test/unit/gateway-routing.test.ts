import { describe, expect, it } from 'vitest';
import { clientOf, parseApiClients } from '../../src/gateway/front/api-keys.js';
import { targetOfHeaders, targetOfHost } from '../../src/gateway/front/routing.js';

const F = '0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9';
const V = '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d';

describe('which function a call names', () => {
  it('reads <function>. and <version>.<function>. at the start of the host, port or not', () => {
    expect(targetOfHost(`${F}.invocation.api.nvcf.nvidia.com`)).toEqual({ functionId: F, via: 'host' });
    expect(targetOfHost(`${F}.localhost:8090`)).toEqual({ functionId: F, via: 'host' });
    expect(targetOfHost(`${V}.${F}.localhost:8090`)).toEqual({ functionId: F, versionId: V, via: 'host' });
    expect(targetOfHost(`${F.toUpperCase()}.localhost`)).toEqual({ functionId: F, via: 'host' });
  });

  it('names nothing when the host does not begin with a whole UUID', () => {
    for (const host of [
      '127.0.0.1:8090',
      'localhost',
      `x${F}.localhost`,
      `${F}x.localhost`,
      `${F.slice(1)}.a`,
      undefined,
    ])
      expect(targetOfHost(host)).toBeUndefined();
  });

  it('takes function-id only as a UUID, and function-version-id only when it is one too', () => {
    expect(targetOfHeaders(F, undefined)).toEqual({ functionId: F, via: 'header' });
    expect(targetOfHeaders(F, V)).toEqual({ functionId: F, versionId: V, via: 'header' });
    expect(targetOfHeaders(F, 'latest')).toEqual({ functionId: F, via: 'header' });
    expect(targetOfHeaders('my-function', V)).toBeUndefined();
  });
});

describe('API clients', () => {
  it('knows each client by its key, and nobody by a wrong or missing one', () => {
    const clients = parseApiClients('solo-key', 'alice:a-key, b-key');
    expect(clients.map((c) => c.name)).toEqual(['api-key', 'alice', expect.stringMatching(/^key-[0-9a-f]{12}$/)]);
    expect(clientOf(clients, 'Bearer a-key')?.name).toBe('alice');
    expect(clientOf(clients, 'bearer solo-key')?.name).toBe('api-key');
    expect(clientOf(clients, 'Bearer b-key')?.name).toBe(clients[2]!.name);
    expect(clientOf(clients, 'Bearer a-ke')).toBeUndefined();
    expect(clientOf(clients, 'a-key')).toBeUndefined();
    expect(clientOf(clients, undefined)).toBeUndefined();
  });

  it('refuses a key listed twice, and a name without a key', () => {
    expect(() => parseApiClients(undefined, 'a:k1, b:k1')).toThrow(/listed twice/);
    expect(() => parseApiClients(undefined, 'a:')).toThrow(/has no key/);
  });
});
