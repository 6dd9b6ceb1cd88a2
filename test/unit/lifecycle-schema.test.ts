import { describe, expect, it } from 'vitest';
import { Tail } from '../../src/gateway/lifecycle/launch.js';
import { mayStartInstances } from '../../src/gateway/lifecycle/routes.js';
import { DeploymentBody, FunctionSpec, instanceCount, toRecord } from '../../src/gateway/lifecycle/schema.js';

const base = { name: 'echo', inferenceUrl: '/echo', localCommand: ['python3', 'app.py'] };

describe('function registration bodies', () => {
  it('takes NVCF model URLs without a leading slash and ISO health timeouts', () => {
    const spec = FunctionSpec.parse({
      ...base,
      inferenceUrl: 'v2/models/m/infer',
      health: { uri: 'ready', timeout: 'PT1M30S' },
    });
    expect(spec.inferenceUrl).toBe('/v2/models/m/infer');
    const record = toRecord(spec, 'f', 'v', 'local');
    expect(record.health).toMatchObject({ uri: '/ready', timeout: 90, expectedStatusCode: 200, protocol: 'HTTP' });
  });

  it('defaults the health check to /v2/health/ready or the healthUri given', () => {
    expect(toRecord(FunctionSpec.parse(base), 'f', 'v', 'local').health.uri).toBe('/v2/health/ready');
    expect(toRecord(FunctionSpec.parse({ ...base, healthUri: '/health' }), 'f', 'v', 'local').health.uri).toBe(
      '/health',
    );
  });

  it('refuses Helm charts, a function with nothing to run, and localCommand with localEndpoint', () => {
    expect(FunctionSpec.safeParse({ ...base, helmChart: 'https://x/chart' }).success).toBe(false);
    expect(FunctionSpec.safeParse({ name: 'empty', inferenceUrl: '/x' }).success).toBe(false);
    expect(FunctionSpec.safeParse({ ...base, localEndpoint: 'http://127.0.0.1:8000' }).success).toBe(false);
    expect(FunctionSpec.safeParse({ ...base, name: '../escape' }).success).toBe(false);
  });
  it('takes harness-only chosen ids as UUIDs, lower-cased, and keeps them out of the record', () => {
    const spec = FunctionSpec.parse({
      ...base,
      id: 'DE7E1000-0000-4000-8000-000000000001',
      versionId: 'de7e1000-0000-4000-8000-000000000002',
    });
    expect(spec.id).toBe('de7e1000-0000-4000-8000-000000000001');
    expect(toRecord(spec, 'f', 'v', 'local')).toMatchObject({ id: 'f', versionId: 'v' });
    expect(FunctionSpec.safeParse({ ...base, id: 'dev' }).success).toBe(false);
  });

  it('takes a shared folder for instance folders only as an absolute path', () => {
    expect(FunctionSpec.parse({ ...base, localSharedDir: '/srv/shared' }).localSharedDir).toBe('/srv/shared');
    expect(FunctionSpec.safeParse({ ...base, localSharedDir: 'shared' }).success).toBe(false);
  });
});

describe('deployment bodies', () => {
  it('runs the sum of minInstances, at least one', () => {
    const body = DeploymentBody.parse({
      deploymentSpecifications: [
        { gpu: 'L40', minInstances: 2, maxInstances: 2 },
        { gpu: 'T10', minInstances: 1, maxInstances: 3 },
      ],
    });
    expect(instanceCount(body.deploymentSpecifications)).toBe(3);
    expect(instanceCount([{ ...body.deploymentSpecifications[0]!, minInstances: 0 }])).toBe(1);
  });

  it('refuses maxInstances below minInstances', () => {
    const parsed = DeploymentBody.safeParse({
      deploymentSpecifications: [{ gpu: 'L40', minInstances: 2, maxInstances: 1 }],
    });
    expect(parsed.success).toBe(false);
  });
});

describe('who may start instances', () => {
  it('allows a loopback gateway, one with an API key, or a call from this machine, and refuses an open one', () => {
    expect(mayStartInstances({ host: '127.0.0.1' })).toBe(true);
    expect(mayStartInstances({ host: '::1' })).toBe(true);
    expect(mayStartInstances({ host: '0.0.0.0', apiKey: 'secret' })).toBe(true);
    expect(mayStartInstances({ host: '0.0.0.0' })).toBe(false);
    expect(mayStartInstances({ host: '192.168.1.4' })).toBe(false);
    expect(mayStartInstances({ host: '0.0.0.0', caller: '127.0.0.1' })).toBe(true);
    expect(mayStartInstances({ host: '0.0.0.0', caller: '::ffff:127.0.0.1' })).toBe(true);
    expect(mayStartInstances({ host: '0.0.0.0', caller: '172.17.0.1' })).toBe(false);
  });
});

describe('the output kept of an instance', () => {
  it('keeps only the last lines, each cut to a bounded length', () => {
    const tail = new Tail(3);
    for (let i = 0; i < 10; i++) tail.push(`line ${i}\n`);
    tail.push(`${'x'.repeat(5000)}\n`);
    const lines = tail.text().split('\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe('line 8');
    expect(lines[2]!.length).toBe(500);
  });
});
