import type { GatewayContext } from '../context.js';
import type { VersionView } from '../functions/registry.js';
import type { FunctionStatus } from '../../shared/worker-state.js';
import type { DeploymentRecord, VersionRecord } from './schema.js';

/** The answers of the lifecycle API, in NVCF's shapes, with the harness's own fields marked in docs/harness.md. */

/** A registered version's status: live from this gateway's controller, else from the workers of whoever runs it. */
export function statusOf(ctx: GatewayContext, record: VersionRecord, deployed: boolean): FunctionStatus {
  const live = ctx.lifecycle.controller.status(record.versionId);
  if (live) return live;
  if (!deployed) return 'INACTIVE';
  const seen = ctx.registry.version(record.versionId)?.status;
  return seen && seen !== 'INACTIVE' ? seen : 'DEPLOYING';
}

export function functionView(record: VersionRecord, status: FunctionStatus) {
  const { health, localCommand, containerImage, containerArgs, models, ...rest } = record;
  return {
    ...rest,
    status,
    functionType: 'DEFAULT',
    healthUri: health.uri,
    health: { ...health, timeout: `PT${health.timeout}S` },
    ...(containerImage ? { containerImage } : {}),
    ...(containerArgs ? { containerArgs } : {}),
    ...(models ? { models } : {}),
    ...(localCommand ? { localCommand } : {}),
  };
}

/** A version only known because a worker announced it (started by hand, or by `dev`). */
export function announcedView(v: VersionView) {
  return {
    id: v.functionId,
    versionId: v.functionVersionId,
    name: v.name,
    ncaId: v.ncaId,
    status: v.status,
    inferenceUrl: v.inferenceUrl,
    createdAt: new Date(v.createdAt).toISOString(),
  };
}

export function deploymentView(ctx: GatewayContext, record: VersionRecord, deployment: DeploymentRecord) {
  const live = ctx.lifecycle.controller.details(record.versionId);
  const status = statusOf(ctx, record, true);
  return {
    functionId: deployment.functionId,
    functionVersionId: deployment.functionVersionId,
    ncaId: deployment.ncaId,
    functionStatus: status,
    deploymentSpecifications: deployment.deploymentSpecifications,
    healthInfo:
      // Only for a deployment in ERROR; each instance's own lastError keeps the history.
      status === 'ERROR'
        ? deployment.deploymentSpecifications.map((s) => ({
            gpu: s.gpu,
            backend: s.backend ?? 'LOCAL',
            instanceType: s.instanceType ?? s.gpu,
            error: live?.error ?? '',
          }))
        : [],
    createdAt: deployment.createdAt,
    updatedAt: deployment.updatedAt,
    gatewayId: deployment.gatewayId,
    instances: live?.instances ?? [],
  };
}
