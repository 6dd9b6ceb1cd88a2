import type { IncomingMessage, ServerResponse } from 'node:http';
import { UUID_PATTERN } from '../../shared/protocol.js';
import { ownedBy } from '../front/api-keys.js';
import type { GatewayContext } from '../context.js';
import { HttpProblem, sendJson } from '../front/http.js';
import type { VersionView } from './registry.js';

function versionsOrNotFound(ctx: GatewayContext, functionId: string): VersionView[] {
  const versions = UUID_PATTERN.test(functionId) ? ctx.registry.versionsOf(functionId) : [];
  if (versions.length === 0) throw new HttpProblem(404, `function ${functionId.slice(0, 64)} not found`);
  return versions;
}

/** GET /v2/nvcf/queues/functions/{functionId}[/versions/{versionId}] */
export async function queueLengths(
  ctx: GatewayContext,
  res: ServerResponse,
  functionId: string,
  versionId?: string,
): Promise<void> {
  let versions = versionsOrNotFound(ctx, functionId);
  if (versionId !== undefined) {
    versions = versions.filter((v) => v.functionVersionId === versionId.toLowerCase());
    if (versions.length === 0)
      throw new HttpProblem(404, `function ${functionId} has no version ${versionId.slice(0, 64)}`);
  }
  const queues = await Promise.all(
    versions.map(async (v) => ({
      functionVersionId: v.functionVersionId,
      functionName: v.name,
      functionStatus: v.status,
      queueLength: await ctx.queues.length(v.functionVersionId),
    })),
  );
  sendJson(res, 200, { functionId: functionId.toLowerCase(), queues });
}

/** GET /v2/nvcf/queues/{requestId}/position: 0 once a worker has it, capped at 1000 while waiting. */
export async function queuePosition(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
): Promise<void> {
  const entry = UUID_PATTERN.test(requestId) ? await ctx.requests.get(requestId.toLowerCase()) : undefined;
  if (!entry || !ownedBy(entry.record.owner, req))
    throw new HttpProblem(404, `request ${requestId.slice(0, 64)} not found`);
  const where = await ctx.queues.stateOf(entry.record.functionVersionId, entry.record.requestId);
  sendJson(res, 200, {
    requestId: entry.record.requestId,
    functionId: entry.record.functionId,
    positionInQueue: where.state === 'waiting' ? where.position : 0,
  });
}
