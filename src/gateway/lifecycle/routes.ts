import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isDeepStrictEqual } from 'node:util';
import type { z } from 'zod';
import type { GatewayContext } from '../context.js';
import { UUID_PATTERN } from '../../shared/protocol.js';
import { HttpProblem, readJson, sendJson, type Route } from '../front/http.js';
import { supportedGpus } from './gpus.js';
import {
  DeploymentBody,
  FunctionSpec,
  describeIssues,
  toRecord,
  type DeploymentRecord,
  type VersionRecord,
} from './schema.js';
import { announcedView, deploymentView, functionView, statusOf } from './views.js';

/** The function lifecycle API: register, version, list, delete, deploy, scale and undeploy. */

/** Whoever registers owns the function; the harness has one account. */
const LOCAL_NCA_ID = 'local';

async function parse<S extends z.ZodType>(req: IncomingMessage, schema: S): Promise<z.output<S>> {
  const parsed = schema.safeParse(await readJson(req));
  if (!parsed.success) throw new HttpProblem(400, `invalid request body: ${describeIssues(parsed.error)}`);
  return parsed.data;
}

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+|localhost)$/i;

/**
 * A deployment runs commands and images on this machine: only for callers the gateway can
 * trust, that is with an API key, or from this machine itself: the gateway listens on a loopback
 * address, or the call comes from one (`dev` in a container listens on 0.0.0.0 and deploys
 * through its own loopback).
 */
export function mayStartInstances(config: {
  host: string;
  apiKey?: string | undefined;
  caller?: string | undefined;
}): boolean {
  return Boolean(config.apiKey) || LOOPBACK.test(config.host) || LOOPBACK.test(config.caller ?? '');
}

function id(text: string, what: string): string {
  if (!UUID_PATTERN.test(text)) throw new HttpProblem(404, `${what} ${text.slice(0, 64)} not found`);
  return text.toLowerCase();
}

async function versionOrNotFound(ctx: GatewayContext, functionId: string, versionId: string): Promise<VersionRecord> {
  const record = await ctx.lifecycle.store.version(id(versionId, 'function version'));
  if (!record || record.id !== id(functionId, 'function'))
    throw new HttpProblem(
      404,
      `function ${functionId.slice(0, 64)} has no registered version ${versionId.slice(0, 64)}`,
    );
  return record;
}

/** A registered version and its deployment, or a 404 that says which of the two is missing. */
async function deployedOrNotFound(
  ctx: GatewayContext,
  functionId: string,
  versionId: string,
): Promise<{ record: VersionRecord; deployment: DeploymentRecord }> {
  const record = await versionOrNotFound(ctx, functionId, versionId);
  const deployment = await ctx.lifecycle.store.deployment(record.versionId);
  if (!deployment) throw new HttpProblem(404, `function version ${record.versionId} is not deployed`);
  return { record, deployment };
}

async function register(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
  functionId?: string,
): Promise<void> {
  const spec = await parse(req, FunctionSpec);
  const all = await ctx.lifecycle.store.versions();
  let fid = spec.id ?? randomUUID();
  if (functionId !== undefined) {
    fid = id(functionId, 'function');
    if (spec.id !== undefined && spec.id !== fid)
      throw new HttpProblem(400, `invalid request body: id ${spec.id} is not the function ${fid} of the path`);
    if (!all.some((v) => v.id === fid))
      throw new HttpProblem(404, `function ${fid} not found: register it with POST /v2/nvcf/functions first`);
  }
  const record = toRecord(spec, fid, spec.versionId ?? randomUUID(), LOCAL_NCA_ID);
  const same = sameRegistration(all, record, functionId === undefined && spec.id !== undefined);
  if (same) {
    // The same registration again (a script run twice with its chosen ids): nothing changes.
    const deployed = Boolean(await ctx.lifecycle.store.deployment(same.versionId));
    return sendJson(res, 200, { function: functionView(same, statusOf(ctx, same, deployed)) });
  }
  await ctx.lifecycle.store.putVersion(record);
  ctx.log.info(
    { functionId: record.id, functionVersionId: record.versionId, name: record.name },
    'function version registered',
  );
  sendJson(res, 200, { function: functionView(record, 'INACTIVE') });
}

/**
 * For the harness-only chosen ids: the version already registered with exactly these settings,
 * if any; a 409 when a chosen id is taken by something else (another function's version, other
 * settings, or a new function whose id another function of another name has).
 */
function sameRegistration(
  all: readonly VersionRecord[],
  record: VersionRecord,
  chosenFunctionId: boolean,
): VersionRecord | undefined {
  const existing = all.find((v) => v.versionId === record.versionId);
  if (existing) {
    const { createdAt: _a, ...was } = existing;
    const { createdAt: _b, ...now } = record;
    if (isDeepStrictEqual(was, now)) return existing;
    if (existing.id !== record.id)
      throw new HttpProblem(
        409,
        `function version ${record.versionId} is already registered under another function (${existing.id}, ${existing.name})`,
      );
    throw new HttpProblem(
      409,
      `function version ${record.versionId} is already registered with other settings (as ${existing.name}); delete it first (DELETE /v2/nvcf/functions/${existing.id}/versions/${existing.versionId})`,
    );
  }
  const other = chosenFunctionId ? all.find((v) => v.id === record.id && v.name !== record.name) : undefined;
  if (other)
    throw new HttpProblem(
      409,
      `function ${record.id} is already registered as ${other.name}; choose another id, or add a version with POST /v2/nvcf/functions/${record.id}/versions`,
    );
  return undefined;
}

/** Registered versions with their status, then versions only their workers know of. */
async function catalogue(ctx: GatewayContext, functionId?: string) {
  const [records, deployments] = await Promise.all([ctx.lifecycle.store.versions(), ctx.lifecycle.store.deployments()]);
  const deployed = new Set(deployments.map((d) => d.functionVersionId));
  const registered = records
    .filter((r) => functionId === undefined || r.id === functionId)
    .map((r) => functionView(r, statusOf(ctx, r, deployed.has(r.versionId))));
  const known = new Set(records.map((r) => r.versionId));
  const announced = (functionId === undefined ? ctx.registry.all() : ctx.registry.versionsOf(functionId))
    .filter((v) => !known.has(v.functionVersionId))
    .map(announcedView);
  return [...registered, ...announced];
}

async function list(ctx: GatewayContext, res: ServerResponse, functionId?: string, versionId?: string): Promise<void> {
  if (functionId === undefined) return sendJson(res, 200, { functions: await catalogue(ctx) });
  const versions = await catalogue(ctx, id(functionId, 'function'));
  if (versions.length === 0) throw new HttpProblem(404, `function ${functionId.slice(0, 64)} not found`);
  if (versionId === undefined) return sendJson(res, 200, { functions: versions });
  const version = versions.find((v) => v.versionId === versionId.toLowerCase());
  if (!version) throw new HttpProblem(404, `function ${functionId} has no version ${versionId.slice(0, 64)}`);
  sendJson(res, 200, { function: version });
}

async function deleteVersion(
  ctx: GatewayContext,
  res: ServerResponse,
  functionId: string,
  versionId: string,
): Promise<void> {
  const record = await versionOrNotFound(ctx, functionId, versionId);
  if (await ctx.lifecycle.store.deployment(record.versionId))
    throw new HttpProblem(
      409,
      `function version ${record.versionId} is deployed; undeploy it first (DELETE /v2/nvcf/deployments/functions/${record.id}/versions/${record.versionId})`,
    );
  await ctx.lifecycle.store.deleteVersion(record.versionId);
  ctx.log.info({ functionVersionId: record.versionId }, 'function version deleted');
  res.writeHead(204).end();
}

async function deploy(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
  functionId: string,
  versionId: string,
  update: boolean,
): Promise<void> {
  // Any client's key counts: with keys configured, every caller here has one.
  const caller = req.socket.remoteAddress;
  if (!mayStartInstances({ host: ctx.config.host, apiKey: ctx.config.apiClients[0]?.name, caller }))
    throw new HttpProblem(
      403,
      `this gateway listens on ${ctx.config.host} without an API key, and a deployment runs commands on this machine: set GATEWAY_API_KEY, or deploy from this machine`,
    );
  const record = await versionOrNotFound(ctx, functionId, versionId);
  const body = await parse(req, DeploymentBody);
  const existing = await ctx.lifecycle.store.deployment(record.versionId);
  if (update && !existing)
    throw new HttpProblem(404, `function version ${record.versionId} is not deployed; POST to deploy it`);
  if (!update && existing)
    throw new HttpProblem(
      409,
      `function version ${record.versionId} is already deployed; PUT to change its deployment`,
    );
  const now = new Date().toISOString();
  const deployment: DeploymentRecord = {
    functionId: record.id,
    functionVersionId: record.versionId,
    ncaId: record.ncaId,
    deploymentSpecifications: body.deploymentSpecifications,
    gatewayId: existing?.gatewayId ?? ctx.lifecycle.controller.gatewayId,
    createdAt: existing?.createdAt ?? now,
    updatedAt: now,
  };
  await ctx.lifecycle.store.putDeployment(deployment);
  if (deployment.gatewayId === ctx.lifecycle.controller.gatewayId)
    await ctx.lifecycle.controller.apply(record, deployment);
  ctx.log.info(
    { functionVersionId: record.versionId, specs: deployment.deploymentSpecifications },
    update ? 'deployment updated' : 'deployment created',
  );
  sendJson(res, 200, { deployment: deploymentView(ctx, record, deployment) });
}

async function getDeployment(
  ctx: GatewayContext,
  res: ServerResponse,
  functionId: string,
  versionId: string,
): Promise<void> {
  const { record, deployment } = await deployedOrNotFound(ctx, functionId, versionId);
  sendJson(res, 200, { deployment: deploymentView(ctx, record, deployment) });
}

async function undeploy(
  ctx: GatewayContext,
  res: ServerResponse,
  functionId: string,
  versionId: string,
): Promise<void> {
  const { record } = await deployedOrNotFound(ctx, functionId, versionId);
  await ctx.lifecycle.store.deleteDeployment(record.versionId);
  // The workers drain in the background; the version is INACTIVE for callers at once.
  ctx.lifecycle.controller.undeploy(record.versionId);
  ctx.log.info({ functionVersionId: record.versionId }, 'deployment deleted');
  sendJson(res, 200, { function: functionView(record, 'INACTIVE') });
}

const seg = '([^/]+)';
const deploymentPath = new RegExp(`^/v2/nvcf/deployments/functions/${seg}/versions/${seg}$`);
const versionPath = new RegExp(`^/v2/nvcf/functions/${seg}/versions/${seg}$`);

export const lifecycleRoutes: Route[] = [
  { method: 'POST', pattern: /^\/v2\/nvcf\/functions$/, handler: (c, q, s) => register(c, q, s) },
  { method: 'GET', pattern: /^\/v2\/nvcf\/functions$/, handler: (c, _q, s) => list(c, s) },
  {
    method: 'POST',
    pattern: new RegExp(`^/v2/nvcf/functions/${seg}/versions$`),
    handler: (c, q, s, [f]) => register(c, q, s, f),
  },
  {
    method: 'GET',
    pattern: new RegExp(`^/v2/nvcf/functions/${seg}/versions$`),
    handler: (c, _q, s, [f]) => list(c, s, f),
  },
  { method: 'GET', pattern: versionPath, handler: (c, _q, s, [f, v]) => list(c, s, f, v) },
  { method: 'DELETE', pattern: versionPath, handler: (c, _q, s, [f, v]) => deleteVersion(c, s, f!, v!) },
  { method: 'POST', pattern: deploymentPath, handler: (c, q, s, [f, v]) => deploy(c, q, s, f!, v!, false) },
  { method: 'PUT', pattern: deploymentPath, handler: (c, q, s, [f, v]) => deploy(c, q, s, f!, v!, true) },
  { method: 'GET', pattern: deploymentPath, handler: (c, _q, s, [f, v]) => getDeployment(c, s, f!, v!) },
  { method: 'DELETE', pattern: deploymentPath, handler: (c, _q, s, [f, v]) => undeploy(c, s, f!, v!) },
  {
    method: 'GET',
    pattern: /^\/v2\/nvcf\/supportedGpus$/,
    handler: async (_c, _q, s) => sendJson(s, 200, { gpus: await supportedGpus() }),
  },
];
