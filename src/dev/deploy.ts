import { setTimeout as sleep } from 'node:timers/promises';
import {
  LifecycleCallFailed,
  deleteVersion,
  deployFunction,
  getDeployment,
  registerFunction,
  undeployFunction,
  type DeploymentSummary,
  type FunctionSummary,
  type GatewayTarget,
  type InstanceSummary,
} from '../gateway/lifecycle/client.js';
import type { LifecycleState } from '../worker/lifecycle.js';
import { demoCommand } from './demo-container.js';

/**
 * What `dev` does through the lifecycle API, as a user's own deployment script would: register
 * the function under its fixed ids, deploy one instance, follow it, undeploy and forget it.
 */

/** Fixed ids, so the curl line in the README works run after run. */
export const DEV_FUNCTION_ID = 'de7e1000-0000-4000-8000-000000000001';
export const DEV_VERSION_ID = 'de7e1000-0000-4000-8000-000000000002';
const DEV_VERSION = { id: DEV_FUNCTION_ID, versionId: DEV_VERSION_ID };

/** How often `dev` reads its deployment while it runs. */
const FOLLOW_MS = 500;

export interface DevFunction {
  demo: boolean;
  /** The user's container, already running (ignored with `demo`, whose port the gateway picks). */
  inferenceUrl: URL;
  healthPath: string;
  sharedDir: string | undefined;
}

/** The registration body: the demo as a harness-only localCommand, a user's container as a localEndpoint. */
export function devFunctionSpec(fn: DevFunction): Record<string, unknown> {
  const common = {
    ...DEV_VERSION,
    healthUri: fn.healthPath,
    description: 'registered by nvcf-sidecar dev',
    ...(fn.sharedDir ? { localSharedDir: fn.sharedDir } : {}),
  };
  if (fn.demo)
    return {
      ...common,
      name: 'echo-demo',
      inferenceUrl: '/echo',
      localCommand: demoCommand(),
      containerEnvironment: [{ key: 'HOST', value: '127.0.0.1' }],
    };
  return {
    ...common,
    name: 'dev',
    inferenceUrl: `${fn.inferenceUrl.pathname}${fn.inferenceUrl.search}`,
    localEndpoint: fn.inferenceUrl.origin,
  };
}

/**
 * Registers and deploys one instance. A deployment already there (left by a `dev` killed on a
 * NATS that outlives it, and resumed by the gateway) is updated to this one instead.
 */
export async function registerAndDeploy(
  target: GatewayTarget,
  spec: Record<string, unknown>,
  concurrency: number,
): Promise<FunctionSummary> {
  const version = await registerFunction(target, spec);
  const options = { maxRequestConcurrency: concurrency };
  try {
    await deployFunction(target, version, 1, options).catch((err: unknown) => {
      if (!(err instanceof LifecycleCallFailed && err.status === 409)) throw err;
      return deployFunction(target, version, 1, { ...options, rescale: true });
    });
  } catch (err) {
    await deleteVersion(target, version).catch(() => undefined);
    throw err;
  }
  return version;
}

/** Undeploys (its worker drains in the gateway's background) and forgets the version. */
export async function undeployAndForget(target: GatewayTarget): Promise<void> {
  await undeployFunction(target, DEV_VERSION).catch(() => undefined);
  await deleteVersion(target, DEV_VERSION).catch(() => undefined);
}

/**
 * Reads the deployment every half second until `stop` aborts; `latest` is what was last read.
 * A read that fails (the gateway stopping) keeps the previous one.
 */
export class DeploymentFollower {
  latest: DeploymentSummary | undefined;

  constructor(
    private readonly target: GatewayTarget,
    private readonly stop: AbortSignal,
  ) {}

  async run(): Promise<void> {
    while (!this.stop.aborted) {
      this.latest = await getDeployment(this.target, DEV_VERSION).catch(() => this.latest);
      await sleep(FOLLOW_MS, undefined, { signal: this.stop }).catch(() => undefined);
    }
  }

  get instance(): InstanceSummary | undefined {
    return this.latest?.instances[0];
  }

  /** The worker's state as `dev` reports it: waiting for the container once the worker is up. */
  workerState(): LifecycleState {
    const instance = this.instance;
    if (this.latest?.functionStatus === 'ERROR') return 'failed';
    switch (instance?.state) {
      case 'ready':
        return 'running';
      case 'unhealthy':
        return 'unhealthy';
      case 'starting':
      case 'restarting':
      case undefined:
        return instance?.healthPort ? 'waiting' : 'starting';
      default:
        return 'stopped';
    }
  }

  /** Resolves once `until` holds for the latest read, or `stop` aborts (false). */
  async wait(until: (follower: this) => boolean): Promise<boolean> {
    while (!this.stop.aborted) {
      if (until(this)) return true;
      await sleep(FOLLOW_MS / 5, undefined, { signal: this.stop }).catch(() => undefined);
    }
    return false;
  }
}
