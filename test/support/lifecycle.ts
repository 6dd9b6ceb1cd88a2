import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  getDeployment,
  type DeploymentSummary,
  type FunctionSummary,
  type GatewayTarget,
} from '../../src/gateway/lifecycle/client.js';
import type { RunningGateway } from './gateway.js';
import { useRig } from './rig.js';

/**
 * What the tests of the lifecycle API share: a function registered to run the test app as a
 * harness-only `localCommand`, a deployment spec, and waits for what a deployment becomes.
 */

/** Each instance starts a worker under tsx: seconds on an idle machine, much longer on a loaded one. */
export const ACTIVE_WITHIN_MS = 120_000;

const app = fileURLToPath(new URL('./lifecycle-app.mjs', import.meta.url));

/** A function whose instances run lifecycle-app.mjs with `env` (FAIL_AT_START makes it fail). */
export function fromLocalCommand(name: string, env: Record<string, string> = {}) {
  return {
    name,
    inferenceUrl: '/infer',
    healthUri: '/v2/health/ready',
    localCommand: [process.execPath, app],
    containerEnvironment: Object.entries(env).map(([key, value]) => ({ key, value })),
    apiBodyFormat: 'CUSTOM',
    description: 'test function',
    tags: ['test'],
  };
}

/** A deployment body for `instances` instances, no more and no fewer. */
export const deploymentSpec = (instances: number) => ({
  deploymentSpecifications: [{ gpu: 'L40', instanceType: 'local', minInstances: instances, maxInstances: instances }],
});

/** Polls `probe` until it gives a value; the bound only stops a test that would never pass. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = ACTIVE_WITHIN_MS,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

/** The deployment once it is ACTIVE; throws with the reason when it becomes ERROR. */
export function waitUntilActive(
  target: GatewayTarget,
  version: Pick<FunctionSummary, 'id' | 'versionId'>,
  timeoutMs = ACTIVE_WITHIN_MS,
): Promise<DeploymentSummary> {
  return until(
    'the deployment to become ACTIVE',
    async () => {
      const deployment = await getDeployment(target, version);
      if (deployment.functionStatus === 'ERROR')
        throw new Error(
          `the deployment failed: ${deployment.healthInfo.find((h) => h.error)?.error ?? 'no reason given'}`,
        );
      return deployment.functionStatus === 'ACTIVE' ? deployment : undefined;
    },
    timeoutMs,
  );
}

// Answers are checked field by field by the assertions; a type for each would only restate them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Loose = any;

/** One call to a gateway's API: the status and the JSON body, if any. */
export async function callGateway(
  url: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: Loose }> {
  const res = await fetch(`${url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : undefined };
}

/**
 * A rig with a gateway for the lifecycle tests, which restart it: `gateway()` is the one running
 * now, and `call` goes to it.
 */
export function useLifecycleGateway() {
  const rig = useRig({ gateway: true });
  let restarted: RunningGateway | undefined;
  const gateway = () => restarted ?? rig.gateway;
  return {
    rig,
    gateway,
    stopGateway: () => gateway().stop(),
    async startGateway(): Promise<void> {
      restarted = await rig.startGateway();
    },
    call: (method: string, path: string, body?: unknown) => callGateway(gateway().url, method, path, body),
  };
}
