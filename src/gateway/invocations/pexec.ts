import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { acceptsEventStream, queueableClientHeaders } from '../../shared/headers.js';
import { frameBodyLimit } from '../../shared/nats.js';
import { Invocation, UUID_PATTERN, subjects, type InvocationInput } from '../../shared/protocol.js';
import { resolveAssetReferences } from '../storage/assets-api.js';
import type { GatewayContext } from '../context.js';
import { callerOf, ownedBy } from '../front/api-keys.js';
import { HttpProblem, requestHeader, rawHeaderPairs } from '../front/http.js';
import { takeBody } from '../front/request-body.js';
import type { PendingRequest } from './requests.js';
import type { VersionView } from '../functions/registry.js';
import { answerStillRunning } from './answers.js';
import { ensureAdmission, enqueue } from './enqueue.js';
import { answerWhenReady } from './wait.js';
import { ResponseReader } from './response-reader.js';
import { QueuedRecord } from './queued-record.js';

const DEFAULT_POLL_SECONDS = 60;
/** How long a new call waits for a NATS connection that is moving (a cluster node went away) before a 503. */
const RECONNECT_WAIT_MS = 2_000;
/** NVCF raises the default window for event streams, which run long by nature. */
const DEFAULT_SSE_POLL_SECONDS = 1200;

/**
 * NVCF-POLL-SECONDS: an integer up to 3600, or the default; 0 counts as 1, as NVCF's invocation
 * service clamps it. Anything else is the caller's 400.
 */
function pollSecondsOf(req: IncomingMessage): number {
  const text = requestHeader(req, 'nvcf-poll-seconds')?.trim();
  if (text === undefined || text === '') return wantsEventStream(req) ? DEFAULT_SSE_POLL_SECONDS : DEFAULT_POLL_SECONDS;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value > 3600) {
    throw new HttpProblem(
      400,
      `NVCF-POLL-SECONDS must be a whole number of seconds from 0 to 3600, not "${text.slice(0, 32)}"`,
    );
  }
  return Math.max(1, value);
}

function wantsEventStream(req: IncomingMessage): boolean {
  return acceptsEventStream(rawHeaderPairs(req));
}

/** The version a pexec call goes to: the one named, or a random ACTIVE one of the function. */
function chooseVersion(ctx: GatewayContext, functionId: string, versionId: string | undefined): VersionView {
  if (!UUID_PATTERN.test(functionId)) throw new HttpProblem(404, `function ${functionId.slice(0, 64)} not found`);
  if (versionId !== undefined) {
    const version = UUID_PATTERN.test(versionId) ? ctx.registry.version(versionId) : undefined;
    if (!version || version.functionId !== functionId.toLowerCase())
      throw new HttpProblem(404, `function ${functionId} has no version ${versionId.slice(0, 64)}`);
    return version;
  }
  const versions = ctx.registry.versionsOf(functionId);
  if (versions.length === 0)
    throw new HttpProblem(404, `function ${functionId} not found: no worker has registered it`);
  const active = versions.filter((v) => v.status === 'ACTIVE');
  // With nothing active the request still queues: a worker may come, or the caller gets NVCF's 504.
  const pool = active.length > 0 ? active : versions;
  return pool[Math.floor(Math.random() * pool.length)]!;
}

/** Tells the caller which function answered, as NVCF's invocation responses may. */
function nameFunction(res: ServerResponse, functionId: string, functionVersionId: string): void {
  res.setHeader('NVCF-FUNCTION-ID', functionId);
  res.setHeader('NVCF-FUNCTION-VERSION-ID', functionVersionId);
}

/**
 * POST /v2/nvcf/pexec/functions/{functionId}[/versions/{versionId}], which calls the function's
 * inference URL, and a routed call (front/routing.ts), which calls `containerPath`: the caller's own
 * path and query, with the caller's method.
 */
export async function invokeFunction(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
  functionId: string,
  versionId?: string,
  containerPath?: string,
): Promise<void> {
  const pollSeconds = pollSecondsOf(req);
  const version = chooseVersion(ctx, functionId, versionId);
  nameFunction(res, version.functionId, version.functionVersionId);
  const caller = callerOf(req);
  const assets = await resolveAssetReferences(ctx, requestHeader(req, 'nvcf-input-asset-references'));
  const requestId = randomUUID();
  const log = ctx.log.child({ requestId, functionVersionId: version.functionVersionId });
  const fv = version.functionVersionId;

  // Nothing is published while NATS is away (nats.js would send it once back, long after this
  // caller was told no); a connection moving to another server of a cluster is waited for.
  if (!(await ctx.link.whenOnline(RECONNECT_WAIT_MS)))
    throw new HttpProblem(503, 'the gateway cannot reach NATS right now (DISCONNECTED); retry later', {
      'Retry-After': '1',
    });
  await ensureAdmission(ctx, fv);

  // Taken only now, so a call refused above never had its body read.
  const contentType = requestHeader(req, 'content-type') ?? 'application/octet-stream';
  const taken = await takeBody(req, frameBodyLimit(ctx.nc), ctx.config.maxRequestBytes, async (stream) => {
    try {
      await ctx.store.put('bodies', requestId, stream, contentType);
    } catch (err) {
      await ctx.store.delete('bodies', requestId);
      throw err;
    }
  });
  const inline = 'inline' in taken;
  const body = 'inline' in taken ? taken.inline : new Uint8Array(0);
  // A body parked for a request that is then not queued would wait out its TTL for nobody.
  const discardParked = () => (inline ? Promise.resolve() : ctx.store.delete('bodies', requestId));
  const ttl = ctx.config.urlTtlMs;
  const now = Date.now();
  const replyTo = subjects.replyTo(requestId, ctx.config.gatewayId);
  const invocation: Omit<InvocationInput, 'v'> = {
    requestId,
    functionId: version.functionId,
    functionVersionId: fv,
    ncaId: version.ncaId,
    subject: caller?.name ?? 'anonymous',
    method: req.method!.toUpperCase(),
    path: containerPath ?? version.inferenceUrl,
    headers: [...queueableClientHeaders(rawHeaderPairs(req)), ['NVCF-INVOCATION-REGION', ctx.config.invocationRegion]],
    ...(inline ? {} : { bodyUrl: ctx.signer.url({ method: 'GET', kind: 'bodies', id: requestId }, ttl) }),
    assets: assets.map((a) => ({
      assetId: a.assetId,
      contentType: a.contentType,
      url: ctx.signer.url({ method: 'GET', kind: 'assets', id: a.assetId }, ttl),
    })),
    requestTime: now,
    pollSeconds,
    largeResult: {
      uploadUrl: ctx.signer.url({ method: 'PUT', kind: 'results', id: requestId }, ttl),
      downloadUrl: ctx.signer.url({ method: 'GET', kind: 'results', id: requestId }, ttl),
    },
    replyTo,
  };
  const checked = Invocation.safeParse({ v: 1, ...invocation });
  if (!checked.success) {
    await discardParked();
    throw new HttpProblem(
      400,
      `the request cannot be queued: ${checked.error.issues.map((i) => `${i.path.join('.')} ${i.message}`).join('; ')}`,
    );
  }

  const record: PendingRequest = {
    requestId,
    functionId: version.functionId,
    functionVersionId: fv,
    gatewayId: ctx.config.gatewayId,
    replyTo,
    createdAt: now,
    lastSeenAt: now,
    pollSeconds,
    // Taken before the publish: every response of this request lands above it.
    resultsFrom: ctx.resultsFloor.take(),
    ...(caller ? { owner: caller.name } : {}),
  };
  // Written when something needs it (queued-record.ts): most calls are answered before.
  const queued = new QueuedRecord(ctx, record);
  // Listening before the publish: no answer can come before it, so the wait starts without a read.
  const reader = new ResponseReader(ctx, record, true);
  try {
    await enqueue(ctx, invocation, body, log);
  } catch (err) {
    reader.close();
    queued.close();
    await discardParked();
    throw err;
  }
  // Debug: each call's one info line is its outcome ("result delivered", or why it was refused).
  log.debug(
    { pollSeconds, bytes: 'inline' in taken ? taken.inline.length : taken.parked, inline, assets: assets.length },
    'request queued',
  );
  res.setHeader('NVCF-REQID', requestId);
  await answerWhenReady(ctx, record, pollSeconds, res, { reader, record: queued });
}

/** GET /v2/nvcf/pexec/status/{requestId}: the same wait; after the result is out, 404. */
export async function requestStatus(
  ctx: GatewayContext,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
): Promise<void> {
  const pollSeconds = pollSecondsOf(req);
  let entry;
  try {
    entry = UUID_PATTERN.test(requestId) ? await ctx.requests.get(requestId.toLowerCase()) : undefined;
  } catch (err) {
    // The record could not be read (NATS restarting): the request is not known to have failed.
    ctx.log.warn(
      { requestId, err: (err as Error).message },
      'request record unreadable; answering 202 so the caller polls again',
    );
    return answerStillRunning(res, requestId.toLowerCase());
  }
  // Its record waits for NATS to take it (queued-record.ts): the request is still running.
  const unrecorded = entry ? undefined : ctx.unrecorded.get(requestId.toLowerCase());
  if (unrecorded && ownedBy(unrecorded.owner, req)) return answerStillRunning(res, unrecorded.requestId);
  // Another client's request is answered exactly as an unknown one: its id says nothing.
  if (!entry || !ownedBy(entry.record.owner, req))
    throw new HttpProblem(
      404,
      `request ${requestId.slice(0, 64)} not found: unknown, cancelled, or its result was already delivered`,
    );
  nameFunction(res, entry.record.functionId, entry.record.functionVersionId);
  await answerWhenReady(ctx, entry.record, pollSeconds, res);
}
