import { describe, expect, it } from 'vitest';
import { ConfigError, parseDurationMs } from '../../src/shared/env.js';
import { loadWorkerConfig } from '../../src/worker/config.js';

const base = {
  FUNCTION_ID: '7a5b0c5e-3c1e-4e0a-9c57-1f2d3e4a5b6c',
  FUNCTION_VERSION_ID: '0c1d2e3f-4a5b-4c6d-8e9f-a0b1c2d3e4f5',
};

describe('worker configuration', () => {
  it('applies the NVCF worker defaults when only the ids are set', () => {
    const config = loadWorkerConfig(base);
    expect(config.inference).toEqual({ origin: 'http://127.0.0.1:8000', path: '/' });
    expect(config.health).toMatchObject({
      url: 'http://127.0.0.1:8000/v2/health/ready',
      expectedStatus: 200,
      timeoutMs: 31_000,
      intervalMs: 10_000,
      readyTimeoutMs: 1_800_000,
    });
    expect(config.concurrency).toBe(1);
    expect(config.assetDir).toBe('/var/inf/inputAssets');
    expect(config.responseDir).toBe('/var/inf/response');
    expect([config.healthPort, config.metricsPort]).toEqual([8080, 8010]);
    expect(config.nats).toMatchObject({ servers: ['nats://127.0.0.1:4222'], ackWaitMs: 30_000, maxDeliver: 5 });
    expect(config.passThroughAlways).toBe(false);
  });

  it('keeps one copy of each stream unless NATS_STREAM_REPLICAS asks for a cluster', () => {
    expect(loadWorkerConfig(base).nats.replicas).toBe(1);
    expect(loadWorkerConfig({ ...base, NATS_STREAM_REPLICAS: '3' }).nats.replicas).toBe(3);
    expect(() => loadWorkerConfig({ ...base, NATS_STREAM_REPLICAS: '0' })).toThrow(/NATS_STREAM_REPLICAS/);
  });

  it('probes a separate health port when INFERENCE_HEALTH_PORT is set', () => {
    const config = loadWorkerConfig({
      ...base,
      INFERENCE_PORT: '9000',
      INFERENCE_HEALTH_PORT: '9001',
      INFERENCE_HEALTH_ENDPOINT: '/health',
    });
    expect(config.inference.origin).toBe('http://127.0.0.1:9000');
    expect(config.health.url).toBe('http://127.0.0.1:9001/health');
  });

  it('reports NGN as GFN in NVCF-BACKEND, as NVCF does', () => {
    expect(loadWorkerConfig({ ...base, CLOUD_PROVIDER: 'NGN' }).pod.backend).toBe('GFN');
  });

  it('falls back to SPOT_ENVIRONMENT for NVCF-ENV', () => {
    expect(loadWorkerConfig({ ...base, SPOT_ENVIRONMENT: 'stg' }).pod.environment).toBe('stg');
    expect(loadWorkerConfig({ ...base, SPOT_ENVIRONMENT: 'stg', ICMS_ENVIRONMENT: 'prod' }).pod.environment).toBe(
      'prod',
    );
  });

  it('is frozen all the way down', () => {
    const config = loadWorkerConfig(base);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.nats.servers)).toBe(true);
  });

  it('names every bad variable and how to fix it', () => {
    const attempt = () =>
      loadWorkerConfig({ FUNCTION_VERSION_ID: 'nope', MAX_REQUEST_CONCURRENCY: '0', INFERENCE_READY_TIMEOUT: 'soon' });
    expect(attempt).toThrow(ConfigError);
    const message = (() => {
      try {
        attempt();
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    expect(message).toMatch(/FUNCTION_ID is required but not set/);
    expect(message).toMatch(/FUNCTION_VERSION_ID is "nope": must be the function version id \(a UUID\)/);
    expect(message).toMatch(/MAX_REQUEST_CONCURRENCY is "0"/);
    expect(message).toMatch(/INFERENCE_READY_TIMEOUT is "soon": "soon" is not a duration/);
  });

  it('treats blank variables as unset', () => {
    expect(loadWorkerConfig({ ...base, INFERENCE_PORT: '', NATS_TOKEN: '' }).inference.origin).toBe(
      'http://127.0.0.1:8000',
    );
  });

  it('asks for NATS_USER and NATS_PASSWORD together', () => {
    expect(() => loadWorkerConfig({ ...base, NATS_USER: 'u' })).toThrow(/NATS_USER and NATS_PASSWORD together/);
  });

  it('accepts V3_BACKWARDS_COMPATIBILITY_DISABLED=true', () => {
    expect(loadWorkerConfig({ ...base, V3_BACKWARDS_COMPATIBILITY_DISABLED: 'true' }).passThroughAlways).toBe(true);
  });
});

describe('durations', () => {
  it.each([
    ['30', 30_000],
    ['1.5', 1_500],
    ['31s', 31_000],
    ['500ms', 500],
    ['1h30m', 5_400_000],
    ['PT10S', 10_000],
    ['PT1H', 3_600_000],
    ['P1DT2M', 86_520_000],
  ])('reads %s as %d ms', (text, ms) => {
    expect(parseDurationMs(text)).toBe(ms);
  });

  it.each(['', 'soon', '10 s', 'PT', 'P', '5x', '-3s'])('rejects %j', (text) => {
    expect(parseDurationMs(text)).toBeUndefined();
  });
});
