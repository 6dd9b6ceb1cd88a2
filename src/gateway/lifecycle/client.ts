import { NvcfError, type RetryMeaning } from '../../shared/errors.js';
import type { FunctionStatus } from '../../shared/worker-state.js';

/**
 * A small client of the lifecycle API, for commands that drive a gateway (`dev` registering and
 * deploying in one step, `invoke` listing functions). Every refusal is a LifecycleCallFailed
 * carrying the status and the gateway's problem `detail`.
 */

/** The gateway answered a lifecycle call with an error status. */
export class LifecycleCallFailed extends NvcfError {
  override name = 'LifecycleCallFailed';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }

  get retry(): RetryMeaning {
    return this.status === 429 || this.status >= 503 ? 'retry' : 'give-up';
  }
}
export interface GatewayTarget {
  url: string;
  apiKey?: string | undefined;
}

/** The fields every listed version has, registered or only announced by its workers. */
export interface FunctionSummary {
  id: string;
  versionId: string;
  name: string;
  status: FunctionStatus;
  inferenceUrl: string;
  createdAt: string;
}

export interface InstanceSummary {
  index: number;
  state: string;
  workerId?: string;
  restarts: number;
  lastError?: string;
  /** Where the worker finds the container (a free port for a localCommand). */
  port?: number;
  containerPid?: number;
  workerPid?: number;
  healthPort?: number;
  metricsPort?: number;
  dir?: string;
}

export interface DeploymentSummary {
  functionId: string;
  functionVersionId: string;
  functionStatus: FunctionStatus;
  healthInfo: { error: string }[];
  instances: InstanceSummary[];
}

async function call<T>(target: GatewayTarget, method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (target.apiKey) headers.authorization = `Bearer ${target.apiKey}`;
  const res = await fetch(`${target.url.replace(/\/+$/, '')}${path}`, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  if (!res.ok) {
    let detail = text.slice(0, 500);
    try {
      detail = (JSON.parse(text) as { detail?: string }).detail ?? detail;
    } catch {
      // not problem+json: the raw text says what there is to say
    }
    throw new LifecycleCallFailed(`${method} ${path} answered ${res.status}: ${detail}`, res.status);
  }
  return (text ? JSON.parse(text) : undefined) as T;
}

/** POST /v2/nvcf/functions with NVCF's fields (and the harness-only ones: localCommand, localEndpoint, localSharedDir, id, versionId). */
export async function registerFunction(target: GatewayTarget, spec: Record<string, unknown>): Promise<FunctionSummary> {
  return (await call<{ function: FunctionSummary }>(target, 'POST', '/v2/nvcf/functions', spec)).function;
}

export async function listFunctions(target: GatewayTarget): Promise<FunctionSummary[]> {
  return (await call<{ functions: FunctionSummary[] }>(target, 'GET', '/v2/nvcf/functions')).functions;
}

const deploymentPath = (functionId: string, versionId: string) =>
  `/v2/nvcf/deployments/functions/${encodeURIComponent(functionId)}/versions/${encodeURIComponent(versionId)}`;

/** Deploys `instances` instances of a version (PUT rescales one already deployed). */
export async function deployFunction(
  target: GatewayTarget,
  version: Pick<FunctionSummary, 'id' | 'versionId'>,
  instances = 1,
  options: { gpu?: string; maxRequestConcurrency?: number; rescale?: boolean } = {},
): Promise<DeploymentSummary> {
  const spec = {
    gpu: options.gpu ?? 'LOCAL',
    minInstances: instances,
    maxInstances: instances,
    maxRequestConcurrency: options.maxRequestConcurrency ?? 1,
  };
  const method = options.rescale ? 'PUT' : 'POST';
  const path = deploymentPath(version.id, version.versionId);
  return (await call<{ deployment: DeploymentSummary }>(target, method, path, { deploymentSpecifications: [spec] }))
    .deployment;
}

export async function getDeployment(
  target: GatewayTarget,
  version: Pick<FunctionSummary, 'id' | 'versionId'>,
): Promise<DeploymentSummary> {
  const path = deploymentPath(version.id, version.versionId);
  return (await call<{ deployment: DeploymentSummary }>(target, 'GET', path)).deployment;
}

/** DELETE /v2/nvcf/functions/{fid}/versions/{vid}: forgets a version that is not deployed. */
export async function deleteVersion(
  target: GatewayTarget,
  version: Pick<FunctionSummary, 'id' | 'versionId'>,
): Promise<void> {
  await call(
    target,
    'DELETE',
    `/v2/nvcf/functions/${encodeURIComponent(version.id)}/versions/${encodeURIComponent(version.versionId)}`,
  );
}

export async function undeployFunction(
  target: GatewayTarget,
  version: Pick<FunctionSummary, 'id' | 'versionId'>,
): Promise<void> {
  await call(target, 'DELETE', deploymentPath(version.id, version.versionId));
}
