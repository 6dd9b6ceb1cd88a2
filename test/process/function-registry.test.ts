import { describe, expect, it } from 'vitest';
import { fromLocalCommand, useLifecycleGateway, type Loose } from '../support/lifecycle.js';

/** Registering, listing and forgetting functions; deploying them is deployments.test.ts. */
const SLOW_TEST_MS = 300_000;

const { stopGateway, startGateway, call } = useLifecycleGateway();

describe('the function lifecycle API', { timeout: SLOW_TEST_MS }, () => {
  it('registers a function and a second version, lists them INACTIVE, and deletes a version', async () => {
    const created = await call('POST', '/v2/nvcf/functions', fromLocalCommand('catalogue'));
    expect(created.status).toBe(200);
    const fn = created.json.function;
    expect(fn).toMatchObject({ name: 'catalogue', status: 'INACTIVE', inferenceUrl: '/infer', inferencePort: 8000 });
    expect(fn.health).toMatchObject({ protocol: 'HTTP', uri: '/v2/health/ready', expectedStatusCode: 200 });

    const second = await call('POST', `/v2/nvcf/functions/${fn.id}/versions`, fromLocalCommand('catalogue'));
    expect(second.status).toBe(200);
    expect(second.json.function.id).toBe(fn.id);
    expect(second.json.function.versionId).not.toBe(fn.versionId);

    const versions = await call('GET', `/v2/nvcf/functions/${fn.id}/versions`);
    expect(versions.json.functions.map((v: Loose) => v.versionId).sort()).toEqual(
      [fn.versionId, second.json.function.versionId].sort(),
    );
    const all = await call('GET', '/v2/nvcf/functions');
    expect(all.json.functions.filter((v: Loose) => v.id === fn.id)).toHaveLength(2);

    expect((await call('DELETE', `/v2/nvcf/functions/${fn.id}/versions/${fn.versionId}`)).status).toBe(204);
    expect((await call('GET', `/v2/nvcf/functions/${fn.id}/versions/${fn.versionId}`)).status).toBe(404);
    expect((await call('GET', `/v2/nvcf/functions/${fn.id}/versions`)).json.functions).toHaveLength(1);
  });

  it('keeps registered functions across a gateway restart', async () => {
    const { json } = await call('POST', '/v2/nvcf/functions', fromLocalCommand('durable'));
    await stopGateway();
    await startGateway();
    const details = await call('GET', `/v2/nvcf/functions/${json.function.id}/versions/${json.function.versionId}`);
    expect(details.status).toBe(200);
    expect(details.json.function).toMatchObject({ name: 'durable', status: 'INACTIVE' });
  });

  it('registers under chosen ids (harness only), takes the same registration again, and refuses a clash with 409', async () => {
    const ids = { id: 'c0ffee00-0000-4000-8000-000000000001', versionId: 'c0ffee00-0000-4000-8000-000000000002' };
    const first = await call('POST', '/v2/nvcf/functions', { ...fromLocalCommand('chosen'), ...ids });
    expect(first.status).toBe(200);
    expect(first.json.function).toMatchObject({ ...ids, name: 'chosen', status: 'INACTIVE' });
    // A script run twice: the same body with the same ids changes nothing.
    const again = await call('POST', '/v2/nvcf/functions', { ...fromLocalCommand('chosen'), ...ids });
    expect(again.status).toBe(200);
    expect(again.json.function.createdAt).toBe(first.json.function.createdAt);

    const otherName = await call('POST', '/v2/nvcf/functions', { ...fromLocalCommand('intruder'), id: ids.id });
    expect(otherName.status).toBe(409);
    expect(otherName.json.detail).toMatch(`function ${ids.id} is already registered as chosen`);
    const otherSettings = await call('POST', '/v2/nvcf/functions', {
      ...fromLocalCommand('chosen', { MODE: 'other' }),
      ...ids,
    });
    expect(otherSettings.status).toBe(409);
    expect(otherSettings.json.detail).toMatch(
      `function version ${ids.versionId} is already registered with other settings`,
    );
    const otherFunction = await call('POST', '/v2/nvcf/functions', {
      ...fromLocalCommand('chosen'),
      versionId: ids.versionId,
    });
    expect(otherFunction.status).toBe(409);
    expect(otherFunction.json.detail).toMatch('already registered under another function');

    const listed = (await call('GET', '/v2/nvcf/functions')).json.functions.filter((f: Loose) => f.id === ids.id);
    expect(listed).toEqual([expect.objectContaining({ ...ids, name: 'chosen' })]);
    expect((await call('DELETE', `/v2/nvcf/functions/${ids.id}/versions/${ids.versionId}`)).status).toBe(204);
  });

  it('refuses a malformed function with a 400 that names the field', async () => {
    const bad = await call('POST', '/v2/nvcf/functions', { name: 'no image', inferenceUrl: '/x' });
    expect(bad.status).toBe(400);
    expect(bad.json.detail).toMatch(/name/);
    expect(bad.json.detail).toMatch(/containerImage, models or \(harness only\) localCommand/);
  });

  it('reports the GPUs this machine has: none without the NVIDIA driver', async () => {
    const gpus = await call('GET', '/v2/nvcf/supportedGpus');
    expect(gpus.status).toBe(200);
    expect(Array.isArray(gpus.json.gpus)).toBe(true);
  });
});
