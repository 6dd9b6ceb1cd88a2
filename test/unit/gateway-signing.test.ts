import { describe, expect, it } from 'vitest';
import { UrlSigner } from '../../src/gateway/storage/signing.js';
import { loadGatewayConfig, readGatewayArgs } from '../../src/gateway/config.js';

const signer = new UrlSigner(Buffer.alloc(32, 7), () => 'http://gw:8090');
const query = (url: string) => new URL(url).searchParams;
const asset = { method: 'PUT' as const, kind: 'assets' as const, id: '11111111-1111-4111-8111-111111111111' };

describe('signed storage URLs', () => {
  it('are accepted for the object and method they were made for, until they expire', () => {
    const url = signer.url(asset, 60_000, 1_000_000);
    expect(url.startsWith('http://gw:8090/v2/nvcf/storage/assets/11111111-1111-4111-8111-111111111111?')).toBe(true);
    expect(signer.check(asset, query(url), 1_000_000)).toBeUndefined();
    expect(signer.check(asset, query(url), 1_000_000 + 61_000)).toBe('the URL has expired');
  });

  it('are refused for another object, another method, or with a changed expiry', () => {
    const url = signer.url(asset, 60_000, 1_000_000);
    expect(signer.check({ ...asset, id: '22222222-2222-4222-8222-222222222222' }, query(url), 1_000_000)).toMatch(
      /does not match/,
    );
    expect(signer.check({ ...asset, method: 'GET' }, query(url), 1_000_000)).toMatch(/does not match/);
    const stretched = query(url);
    stretched.set('expires', String(Number(stretched.get('expires')) + 3600));
    expect(signer.check(asset, stretched, 1_000_000)).toMatch(/does not match/);
    expect(signer.check(asset, new URLSearchParams(), 1_000_000)).toBe('the URL is not signed');
  });
});

describe('gateway configuration', () => {
  it('takes flags over environment variables over defaults', () => {
    const config = loadGatewayConfig(
      { GATEWAY_PORT: '9000', GATEWAY_ID: 'from-env' },
      readGatewayArgs(['--port=9100']).flags,
    );
    expect(config.port).toBe(9100);
    expect(config.gatewayId).toBe('from-env');
    expect(config.host).toBe('127.0.0.1');
    expect(config.apiClients).toEqual([]);
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('names the setting and the fix when a value is wrong', () => {
    expect(() => loadGatewayConfig({ GATEWAY_ID: 'has spaces' })).toThrow(/GATEWAY_ID .*letters, digits/);
    expect(() => readGatewayArgs(['--prot', '1'])).toThrow(/unknown option "--prot"; gateway options are --port/);
    expect(() => readGatewayArgs(['--port'])).toThrow(/--port needs a value/);
  });
});
