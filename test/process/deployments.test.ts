import { describe, expect, it } from 'vitest';
import {
  deployFunction,
  listFunctions,
  registerFunction,
  undeployFunction,
} from '../../src/gateway/lifecycle/client.js';
import { echo } from '../support/container.js';
import { waitForStatus } from '../support/gateway.js';
import {
  ACTIVE_WITHIN_MS,
  deploymentSpec as spec,
  fromLocalCommand,
  useLifecycleGateway,
  until,
  waitUntilActive,
  type Loose,
} from '../support/lifecycle.js';
import { alive } from '../support/process.js';

/**
 * Deployments through the lifecycle API: instances started, replaced, scaled and stopped by the
 * gateway. The bounds only stop a test that would never pass; nothing here measures time.
 */
const SLOW_TEST_MS = 300_000;

const { rig, gateway, stopGateway, startGateway, call } = useLifecycleGateway();

const invoke = (functionId: string, body: unknown) => call('POST', `/v2/nvcf/pexec/functions/${functionId}`, body);

describe('deployments', { timeout: SLOW_TEST_MS }, () => {
  it('deploys two instances, survives losing one, scales to one and undeploys to INACTIVE', async () => {
    const { json } = await call('POST', '/v2/nvcf/functions', fromLocalCommand('echo-two'));
    const { id, versionId } = json.function;
    const path = `/v2/nvcf/deployments/functions/${id}/versions/${versionId}`;

    const deployed = await call('POST', path, spec(2));
    expect(deployed.status).toBe(200);
    expect(deployed.json.deployment.functionStatus).toBe('DEPLOYING');
    expect(deployed.json.deployment.instances).toHaveLength(2);
    await waitForStatus(gateway().url, id, versionId, 'ACTIVE', ACTIVE_WITHIN_MS);
    const both = await until('both instances ready', async () => {
      const d = (await call('GET', path)).json.deployment;
      return d.instances.every((i: Loose) => i.state === 'ready') ? d.instances : undefined;
    });

    const first = await invoke(id, { hello: 'world' });
    expect(first.status).toBe(200);
    expect(first.json.echo).toEqual({ hello: 'world' });

    // Kill one instance's container outright; the other keeps answering while it is replaced.
    // (A call that reaches the dead container before the harness notices is a 500
    // urn:inference-connection, as on NVCF; so the calls go once the instance is seen down.)
    const victim = both[0];
    process.kill(victim.containerPid, 'SIGKILL');
    await until('the killed instance seen down', async () => {
      const d = (await call('GET', path)).json.deployment;
      const slot = d.instances.find((i: Loose) => i.index === victim.index);
      return slot.state !== 'ready' || slot.containerPid !== victim.containerPid ? true : undefined;
    });
    const answers = await Promise.all(Array.from({ length: 6 }, (_, n) => invoke(id, { n })));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(answers.map((a) => a.json.echo.n)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(answers.every((a) => a.json.pid !== victim.containerPid)).toBe(true);

    const restarted = await until('the killed instance back', async () => {
      const d = (await call('GET', path)).json.deployment;
      const slot = d.instances.find((i: Loose) => i.index === victim.index);
      return slot.state === 'ready' && slot.containerPid !== victim.containerPid ? slot : undefined;
    });
    expect(restarted.restarts).toBe(1);
    expect(restarted.lastError).toMatch(/container exited \(SIGKILL\)/);

    const scaled = await call('PUT', path, spec(1));
    expect(scaled.status).toBe(200);
    expect(scaled.json.deployment.instances).toHaveLength(1);
    expect(scaled.json.deployment.deploymentSpecifications[0].minInstances).toBe(1);
    expect((await invoke(id, { after: 'scale' })).status).toBe(200);

    const undeployed = await call('DELETE', path);
    expect(undeployed.status).toBe(200);
    expect(undeployed.json.function.status).toBe('INACTIVE');
    expect((await call('GET', `/v2/nvcf/functions/${id}/versions/${versionId}`)).json.function.status).toBe('INACTIVE');
    expect((await call('GET', path)).status).toBe(404);
    // Every process it started is gone once the workers have drained.
    await until('the instances stopped', async () =>
      alive(restarted.containerPid) || alive(restarted.workerPid) ? undefined : true,
    );
  });

  it('reports ERROR with the reason when every instance fails to start', async () => {
    const { json } = await call(
      'POST',
      '/v2/nvcf/functions',
      fromLocalCommand('broken', { FAIL_AT_START: 'cannot load model weights' }),
    );
    const { id, versionId } = json.function;
    const path = `/v2/nvcf/deployments/functions/${id}/versions/${versionId}`;
    expect((await call('POST', path, spec(1))).status).toBe(200);
    await waitForStatus(gateway().url, id, versionId, 'ERROR', ACTIVE_WITHIN_MS);
    const { deployment } = (await call('GET', path)).json;
    expect(deployment.functionStatus).toBe('ERROR');
    expect(deployment.healthInfo[0].error).toMatch(/cannot load model weights/);
    expect(deployment.instances[0].state).toBe('failed');
    expect((await call('DELETE', path)).json.function.status).toBe('INACTIVE');
  });

  it('starts its deployments again when the gateway comes back', async () => {
    const { json } = await call('POST', '/v2/nvcf/functions', fromLocalCommand('comeback'));
    const { id, versionId } = json.function;
    const path = `/v2/nvcf/deployments/functions/${id}/versions/${versionId}`;
    await call('POST', path, spec(1));
    await waitForStatus(gateway().url, id, versionId, 'ACTIVE', ACTIVE_WITHIN_MS);
    const before = (await call('GET', path)).json.deployment.instances[0];
    await stopGateway();
    expect(alive(before.workerPid) || alive(before.containerPid)).toBe(false);
    await startGateway();
    await waitForStatus(gateway().url, id, versionId, 'ACTIVE', ACTIVE_WITHIN_MS);
    expect((await invoke(id, { back: true })).json.echo).toEqual({ back: true });
    expect((await call('DELETE', path)).status).toBe(200);
  });

  it('reports ERROR naming the missing container engine for an image it cannot run', async () => {
    const { json } = await call('POST', '/v2/nvcf/functions', {
      name: 'image-only',
      inferenceUrl: '/infer',
      containerImage: 'nvcr.io/example/echo:1.0',
    });
    const { id, versionId } = json.function;
    const path = `/v2/nvcf/deployments/functions/${id}/versions/${versionId}`;
    expect((await call('POST', path, spec(1))).status).toBe(200);
    await waitForStatus(gateway().url, id, versionId, 'ERROR', ACTIVE_WITHIN_MS);
    const { deployment } = (await call('GET', path)).json;
    expect(deployment.healthInfo[0].error).toMatch(/no container engine.*localCommand/);
    expect((await call('DELETE', path)).status).toBe(200);
  });

  it('runs only workers for a container already running at localEndpoint, driven by the lifecycle client', async () => {
    const container = await rig.startContainer(echo);
    const target = { url: gateway().url };
    const version = await registerFunction(target, {
      name: 'running-already',
      inferenceUrl: '/infer',
      localEndpoint: `http://127.0.0.1:${container.port}`,
    });
    expect((await deployFunction(target, version, 1)).functionStatus).toBe('DEPLOYING');
    const active = await waitUntilActive(target, version, ACTIVE_WITHIN_MS);
    expect(active.instances).toHaveLength(1);
    // The worker's own endpoints, as it logged them.
    expect((await fetch(`http://127.0.0.1:${active.instances[0]!.healthPort}/v1/health/ready`)).status).toBe(200);
    expect(await (await fetch(`http://127.0.0.1:${active.instances[0]!.metricsPort}/metrics`)).text()).toContain(
      'nvcf_worker',
    );
    expect(
      (await call('GET', `/v2/nvcf/deployments/functions/${version.id}/versions/${version.versionId}`)).json.deployment
        .instances[0].containerPid,
    ).toBeUndefined();
    expect((await listFunctions(target)).find((f) => f.versionId === version.versionId)?.status).toBe('ACTIVE');
    expect((await invoke(version.id, { via: 'endpoint' })).json).toEqual({ via: 'endpoint' });
    await undeployFunction(target, version);
    expect((await listFunctions(target)).find((f) => f.versionId === version.versionId)?.status).toBe('INACTIVE');
    await expect(undeployFunction(target, version)).rejects.toThrow(/404: function version .* is not deployed/);
  });

  it('refuses a second POST for a deployed version and a PUT for one that is not deployed', async () => {
    const { json } = await call('POST', '/v2/nvcf/functions', fromLocalCommand('twice'));
    const path = `/v2/nvcf/deployments/functions/${json.function.id}/versions/${json.function.versionId}`;
    expect((await call('PUT', path, spec(1))).status).toBe(404);
    expect((await call('POST', path, spec(1))).status).toBe(200);
    const again = await call('POST', path, spec(1));
    expect(again.status).toBe(409);
    expect(again.json.detail).toMatch(/already deployed; PUT/);
    const deleteVersion = await call(
      'DELETE',
      `/v2/nvcf/functions/${json.function.id}/versions/${json.function.versionId}`,
    );
    expect(deleteVersion.status).toBe(409);
    expect((await call('DELETE', path)).status).toBe(200);
  });
});
