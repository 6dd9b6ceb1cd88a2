import { setTimeout as sleep } from 'node:timers/promises';
import { DiscardPolicy } from 'nats';
import { PROBLEM_CONTENT_TYPE } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { ensureWorkQueue } from '../../shared/nats.js';
import { PROTOCOL_VERSION, messageIds, streams, subjects, type InvocationInput } from '../../shared/protocol.js';
import { encodeFrame } from '../../shared/frame-codec.js';
import type { GatewayContext } from '../context.js';
import { HttpProblem, problemBody } from '../front/http.js';
import { isStreamFull, unreachableNats } from '../../shared/nats-errors.js';

/** How long a publish whose fate is unknown is retried (same message id, so never twice) before giving up. */
const REPUBLISH_FOR_MS = 60_000;

/**
 * Makes sure the version's work stream exists and holds at most GATEWAY_QUEUE_MAX messages,
 * discarding new ones: the stream's own limit is the admission, so concurrent calls can never
 * queue more than the limit (a count checked before publishing could be passed by every call
 * that checked at the same moment).
 */
export async function ensureAdmission(ctx: GatewayContext, functionVersionId: string): Promise<void> {
  if (ctx.ensuredQueues.has(functionVersionId)) return;
  const { jsm, config } = ctx;
  await ensureWorkQueue(jsm, functionVersionId, {
    ackWaitMs: config.nats.ackWaitMs,
    maxDeliver: config.nats.maxDeliver,
    maxMessages: config.queueMax,
    replicas: config.nats.replicas,
  });
  const info = await jsm.streams.info(streams.work(functionVersionId));
  if (info.config.max_msgs !== config.queueMax || info.config.discard !== DiscardPolicy.New)
    await jsm.streams.update(info.config.name, {
      ...info.config,
      max_msgs: config.queueMax,
      discard: DiscardPolicy.New,
    });
  ctx.ensuredQueues.add(functionVersionId);
}

/**
 * Publishes an invocation. A full queue is the caller's 429. When NATS does not answer, the
 * invocation may or may not have been stored (nats.js sends what it buffered once it is back):
 * the call goes on as queued, so its caller gets a 202 with its request id, and the publish is
 * retried in the background under the same message id until JetStream says yes or no.
 */
export async function enqueue(
  ctx: GatewayContext,
  invocation: Omit<InvocationInput, 'v'>,
  body: Uint8Array,
  log: Logger,
): Promise<void> {
  try {
    await ctx.client.invoke(invocation, body);
  } catch (err) {
    if (isStreamFull(err)) throw queueFull(ctx, invocation.functionVersionId, log, err as Error);
    if (!unreachableNats(err)) throw err;
    log.warn({ err: (err as Error).message }, 'the invocation may not be queued yet; retrying it in the background');
    void republish(ctx, invocation, body, log);
  }
}

function queueFull(ctx: GatewayContext, functionVersionId: string, log: Logger, err: Error): HttpProblem {
  log.warn({ err: err.message, queueMax: ctx.config.queueMax }, 'queue full; answering 429');
  return new HttpProblem(
    429,
    `the queue of function version ${functionVersionId} is full (${ctx.config.queueMax} requests); retry later`,
    { 'Retry-After': '1' },
  );
}

async function republish(
  ctx: GatewayContext,
  invocation: Omit<InvocationInput, 'v'>,
  body: Uint8Array,
  log: Logger,
): Promise<void> {
  const giveUpAt = Date.now() + REPUBLISH_FOR_MS;
  let failure: { status: number; detail: string } | undefined;
  while (!failure) {
    try {
      await ctx.client.invoke(invocation, body);
      log.debug('the invocation is queued');
      return;
    } catch (err) {
      if (isStreamFull(err))
        failure = { status: 429, detail: queueFull(ctx, invocation.functionVersionId, log, err as Error).message };
      else if (Date.now() > giveUpAt)
        failure = { status: 503, detail: `the request could not be queued: ${(err as Error).message}` };
      else await sleep(1_000);
    }
  }
  // The caller holds a request id: its next poll must learn the request failed, not wait for ever.
  await answerForGateway(ctx, invocation, failure.status, failure.detail).catch(async (err: Error) => {
    log.error({ err: err.message }, 'could not record why the request was not queued; forgetting it');
    await ctx.requests.remove(invocation.requestId);
  });
}

/** Publishes a problem final for a request, in the worker's place, so every poll reads it the usual way. */
async function answerForGateway(
  ctx: GatewayContext,
  invocation: Omit<InvocationInput, 'v'>,
  status: number,
  detail: string,
): Promise<void> {
  const { requestId, replyTo } = invocation;
  const meta = {
    v: PROTOCOL_VERSION,
    requestId,
    workerId: `gateway-${ctx.config.gatewayId}`,
    attempt: 1,
    kind: 'final',
    status,
    headers: [['Content-Type', PROBLEM_CONTENT_TYPE]],
    chunks: 0,
    streamed: false,
  };
  const body = Buffer.from(problemBody(status, detail, requestId));
  await ctx.nc.jetstream().publish(subjects.response(replyTo, 'final'), encodeFrame(meta, body), {
    msgID: messageIds.final(requestId),
  });
}
