import type { JsMsg } from 'nats';
import { SidecarError, problemForError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { type Invocation } from '../../shared/protocol.js';
import { ForeignReplyError, FrameError, decodeInvocation, replyAddressOf } from '../../shared/frame-codec.js';
import type { HandledOutcome, HandlerDeps } from './handler-deps.js';
import { ResponsePublisher } from './publisher.js';
import { publishProblem } from './relay.js';

/**
 * How a delivery ends when it does not end in the container's answer: handed back to the queue,
 * answered with a problem, or terminated. Every answer here is addressed by `publisherFor`.
 */

/** How long an unstarted request waits before another delivery when it is handed back. */
export const RETRY_DELAY_MS = 1_000;

/**
 * The publisher of one run's responses: the one place a reply address is put together, and every
 * path (answer, problem, refusal) records the publish metric through it.
 */
export function publisherFor(
  deps: HandlerDeps,
  target: { replyTo: string; requestId: string },
  attempt: number,
): ResponsePublisher {
  return new ResponsePublisher(
    deps.js,
    { replyTo: target.replyTo, requestId: target.requestId, workerId: deps.config.workerId, attempt },
    deps.bodyLimit,
    (seconds) => deps.metrics.publish.observe(seconds),
  );
}

/** A message on its last delivery that cannot be started here is answered, not handed back. */
export async function refuseDelivery(msg: JsMsg, gate: 'unhealthy' | 'draining', deps: HandlerDeps): Promise<void> {
  let invocation: Invocation;
  try {
    invocation = decodeInvocation(msg.data).meta;
  } catch (err) {
    return answerMalformed(msg, err as Error, deps);
  }
  const reason =
    gate === 'draining'
      ? new SidecarError('DRAINING', 'the worker is shutting down')
      : new SidecarError('CONTAINER_UNHEALTHY', 'the inference container is not healthy');
  await publishProblem(
    publisherFor(deps, invocation, msg.info.deliveryCount),
    problemForError(lastChance(reason, deps.maxDeliver), invocation.requestId),
  );
  msg.ack();
}

/**
 * Ends a run that failed, so that the caller always gets exactly one final answer: a problem
 * (and ack), or, for work that can run elsewhere, a nak; but never a nak once part of a stream
 * has gone out (a second run would splice two answers together), and never on the last
 * delivery JetStream will make (the caller would wait for ever).
 */
export async function settleFailure(
  msg: JsMsg,
  reason: SidecarError,
  publisher: ResponsePublisher,
  requestId: string,
  deps: HandlerDeps,
  log: Logger,
): Promise<HandledOutcome> {
  if (publisher.done) {
    // The caller already has the final answer; only bookkeeping after it failed.
    msg.ack();
    log.warn({ err: reason.message }, 'request answered, then failed while finishing');
    return 'ok';
  }
  const lastDelivery = msg.info.deliveryCount >= deps.maxDeliver;
  if (reason.disposition === 'retry' && !lastDelivery && !publisher.streaming) {
    msg.nak(reason.code === 'DRAINING' ? 0 : RETRY_DELAY_MS);
    deps.metrics.naks.inc({ reason: reason.code.toLowerCase() });
    log.warn({ code: reason.code, err: reason.message }, 'request handed back to the queue');
    return 'returned';
  }
  log.warn(
    { code: reason.code, err: reason.message, streaming: publisher.streaming },
    'request failed; answering with an error',
  );
  try {
    if (publisher.streaming) await publisher.endStream(undefined, undefined, reason.message);
    else
      await publishProblem(
        publisher,
        problemForError(
          lastDelivery && reason.disposition === 'retry' ? lastChance(reason, deps.maxDeliver) : reason,
          requestId,
        ),
      );
  } catch (publishErr) {
    msg.nak(RETRY_DELAY_MS);
    deps.metrics.naks.inc({ reason: 'publish_failed' });
    log.error({ err: (publishErr as Error).message }, 'could not publish the error; handed the request back');
    return 'returned';
  }
  msg.ack();
  if (reason.code === 'CANCELLED') deps.metrics.cancellations.inc();
  return reason.code === 'REQUEST_EXPIRED' ? 'expired' : reason.code === 'CANCELLED' ? 'cancelled' : 'failed';
}

function lastChance(reason: SidecarError, maxDeliver: number): SidecarError {
  return new SidecarError(
    reason.code,
    `${reason.message}; this was the last of ${maxDeliver} deliveries, so the request ends here`,
  );
}

export async function answerMalformed(msg: JsMsg, err: Error, deps: HandlerDeps): Promise<void> {
  if (err instanceof ForeignReplyError) {
    deps.log.warn(
      { seq: msg.seq, subject: msg.subject, err: err.message },
      'reply subject does not belong to the request; terminating it',
    );
    return msg.term();
  }
  const address = err instanceof FrameError ? replyAddressOf(err.partial) : undefined;
  deps.log.warn(
    { seq: msg.seq, subject: msg.subject, err: err.message, answered: Boolean(address) },
    'malformed invocation message; terminating it',
  );
  if (address) {
    const publisher = publisherFor(deps, address, msg.info.deliveryCount);
    const problem = problemForError(new SidecarError('INVALID_INVOCATION', err.message), address.requestId);
    await publishProblem(publisher, problem).catch((publishErr: Error) =>
      deps.log.error({ err: publishErr.message }, 'could not publish the malformed-message problem'),
    );
  }
  msg.term();
}
