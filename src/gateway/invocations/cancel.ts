import { isNatsNotFound } from '../../shared/nats-errors.js';
import { streams, subjects } from '../../shared/protocol.js';
import type { GatewayContext } from '../context.js';
import type { PendingRequest } from './requests.js';

/**
 * Stops a request everywhere: the worker running it aborts its container call, a queued copy is
 * purged before any worker starts it, and later polls get 404.
 */
export async function cancelRequest(
  ctx: GatewayContext,
  record: Pick<PendingRequest, 'requestId' | 'functionVersionId'>,
  reason: string,
): Promise<void> {
  ctx.client.cancel(record.functionVersionId, record.requestId);
  await Promise.all([
    ctx.queues
      .purge(record.functionVersionId, record.requestId)
      .catch((err: Error) =>
        ctx.log.warn({ requestId: record.requestId, err: err.message }, 'could not purge a cancelled request'),
      ),
    ctx.requests.remove(record.requestId),
  ]);
  ctx.log.info({ requestId: record.requestId, reason }, 'request cancelled');
}

/** True when the request's final response is stored: it has finished, whoever fetches it. */
export async function hasFinal(ctx: GatewayContext, record: Pick<PendingRequest, 'replyTo'>): Promise<boolean> {
  try {
    await ctx.jsm.streams.getMessage(streams.results, { last_by_subj: subjects.response(record.replyTo, 'final') });
    return true;
  } catch (err) {
    if (isNatsNotFound(err)) return false;
    throw err;
  }
}
