import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { JsMsg } from 'nats';
import { downloadAssets } from './asset-download.js';
import { SidecarError } from '../../shared/errors.js';
import { containerRequestHeaders, wantsPassThrough } from '../../shared/headers.js';
import type { Logger } from '../../shared/log.js';
import { RequestOutputs } from '../outputs/output-dir.js';
import { DEFAULT_REQUEST_LIFETIME_MS, EXPIRY_GRACE_MS, type Invocation } from '../../shared/protocol.js';
import { FrameError, decodeInvocation } from '../../shared/frame-codec.js';
import type { HandledOutcome, HandlerDeps } from './handler-deps.js';
import type { RequestAbort } from '../cancels.js';
import { ResponsePublisher, alreadyAnswered } from './publisher.js';
import { discard, relayCompatible, relayStream, type Relayed } from './relay.js';
import { RETRY_DELAY_MS, answerMalformed, publisherFor, settleFailure } from './settle.js';

/**
 * One delivery from the work queue, start to end: decode, guard, prepare, call the container,
 * relay its answer, then settle the message. Ack follows the final response's publish ack, so a
 * crash anywhere before it leaves the message to be delivered again.
 */
export async function handleDelivery(msg: JsMsg, deps: HandlerDeps): Promise<HandledOutcome> {
  const attempt = msg.info.deliveryCount;
  let invocation: Invocation;
  let body: Uint8Array;
  try {
    ({ meta: invocation, body } = decodeInvocation(msg.data));
    if (invocation.functionVersionId.toLowerCase() !== deps.config.functionVersionId) {
      throw new FrameError(
        `invalid invocation: it names function version ${invocation.functionVersionId}, this worker serves ${deps.config.functionVersionId}`,
        invocation,
      );
    }
  } catch (err) {
    await answerMalformed(msg, err as Error, deps);
    return 'malformed';
  }

  const log = deps.log.child({ requestId: invocation.requestId, attempt });
  if (attempt > 1) {
    deps.metrics.redeliveries.inc();
    let answered: boolean;
    try {
      answered = await alreadyAnswered(deps.jsm, invocation.replyTo);
    } catch (err) {
      msg.nak(RETRY_DELAY_MS);
      log.warn({ err: (err as Error).message }, 'could not check for an earlier answer; handed the request back');
      return 'returned';
    }
    if (answered) {
      log.info('request was already answered by an earlier delivery; acknowledging without running it again');
      msg.ack();
      return 'duplicate';
    }
  }

  const publisher = publisherFor(deps, invocation, attempt);
  const controller = deps.cancels.start(invocation.requestId);
  const deadline = invocation.deadline ?? invocation.requestTime + DEFAULT_REQUEST_LIFETIME_MS;
  const timer = setTimeout(
    () =>
      controller.abort(
        new SidecarError(
          'DEADLINE_EXCEEDED',
          `the deadline passed ${Math.round((deadline - invocation.requestTime) / 1000)}s after the request was accepted`,
        ),
      ),
    // Node's timers hold at most 2^31-1 ms (24.8 days); a longer deadline fires then.
    Math.min(MAX_TIMER_MS, Math.max(0, deadline - Date.now())),
  );
  // The request id is a validated UUID, so this join cannot leave the base directory.
  const assetDir = join(deps.config.assetDir, invocation.requestId);
  const stage: Stage = { answered: false };
  try {
    const relayed = await run(invocation, body, publisher, controller, assetDir, stage, deps, log);
    msg.ack();
    // Debug, not info: a line per request costs the worker more CPU than its own bookkeeping of
    // the request (docs/performance.md); the metrics count every outcome.
    log.debug({ status: relayed.status, mode: relayed.mode }, 'request finished');
    // A container error is the one body that is logged (its first KiB): the caller may see only
    // "Inference error", and whoever runs the container needs its own words. 5xx is its fault.
    if (relayed.containerError !== undefined)
      log[relayed.status >= 500 ? 'warn' : 'info'](
        { status: relayed.status, containerBody: relayed.containerError },
        'the container answered with an error',
      );
    return relayed.mode === 'problem' ? 'container_error' : 'ok';
  } catch (err) {
    return await settleFailure(
      msg,
      asSidecarError(err, controller.signal, stage),
      publisher,
      invocation.requestId,
      deps,
      log,
    );
  } finally {
    clearTimeout(timer);
    deps.cancels.finish(invocation.requestId);
    // The asset directory exists only when there were assets; not probing for it saves a
    // failing lstat per request on the hot path. The output directory is its owner's to remove.
    if (invocation.assets.length > 0)
      await rm(assetDir, { recursive: true, force: true }).catch((err: Error) =>
        log.warn({ err: err.message }, 'could not remove the asset directory'),
      );
  }
}

const MAX_TIMER_MS = 2 ** 31 - 1;

async function run(
  invocation: Invocation,
  body: Uint8Array,
  publisher: ResponsePublisher,
  abort: RequestAbort,
  assetDir: string,
  stage: Stage,
  deps: HandlerDeps,
  log: Logger,
): Promise<Relayed> {
  const { signal } = abort;
  const startedAt = Date.now();
  const windowEnd = invocation.requestTime + invocation.pollSeconds * 1000;
  // Only a first delivery can be "queued too long": a redelivery was already running (its
  // worker died or handed it back), and its caller is still waiting for it.
  if (publisher.attempt === 1 && startedAt - windowEnd > EXPIRY_GRACE_MS) {
    throw new SidecarError(
      'REQUEST_EXPIRED',
      `the request waited ${((startedAt - invocation.requestTime) / 1000).toFixed(1)}s for a worker, past its ${invocation.pollSeconds}s poll window`,
    );
  }
  deps.metrics.queueWait.observe(Math.max(0, startedAt - invocation.requestTime) / 1000);
  signal.throwIfAborted();
  await downloadAssets(invocation.assets, assetDir, deps.config.assetLimits, signal, deps.metrics);

  const { config } = deps;
  const passThrough = wantsPassThrough(invocation.headers, config.passThroughAlways);
  // Progress, finished files and large results belong to compatibility mode, as in NVCF.
  const outputs = await RequestOutputs.open({
    requestId: invocation.requestId,
    baseDir: config.responseDir,
    realBase: deps.realResponseDir,
    largeResult: invocation.largeResult,
    watch: !passThrough,
    spoolPath: join(config.spoolDir, `${invocation.requestId}.${publisher.attempt}.response`),
    publisher,
    log,
    signal,
    metrics: deps.metrics,
  });
  try {
    const headers = containerRequestHeaders(
      invocation.headers,
      {
        requestId: invocation.requestId,
        subject: invocation.subject,
        ncaId: invocation.ncaId,
        functionName: config.functionName,
        functionId: config.functionId,
        functionVersionId: config.functionVersionId,
        assetDir,
        largeOutputDir: outputs.dir,
        maxResponseSizeBytes: invocation.maxResponseSizeBytes,
        ...config.pod,
        assetIds: invocation.assets.map((a) => a.assetId),
        pollSecondsLeft: Math.max(0, Math.floor((windowEnd - startedAt) / 1000)),
      },
      !passThrough,
    );
    log.debug({ method: invocation.method, path: invocation.path, passThrough }, 'calling the container');
    // The inference metric covers the container call and its answer, not queueing or assets.
    const calledAt = Date.now();
    const answer = await deps.container.call({
      method: invocation.method,
      path: invocation.path,
      headers,
      body: invocation.bodyUrl ? { url: invocation.bodyUrl } : body,
      signal,
      abortEvents: abort.forUndici,
    });
    stage.answered = true;
    try {
      const pace = {
        nc: deps.nc,
        requestId: invocation.requestId,
        signal,
        readerTimeoutMs: config.streamReaderTimeoutMs,
      };
      const relayed = passThrough
        ? await relayStream(answer, publisher, pace)
        : await relayCompatible(answer, publisher, {
            maxResponseSizeBytes: invocation.maxResponseSizeBytes,
            outputs,
            pace,
          });
      deps.metrics.inference.observe((Date.now() - calledAt) / 1000);
      return relayed;
    } finally {
      // A body left half read would hold one of the pool's few connections for ever.
      if (!answer.body.readableEnded) discard(answer.body);
    }
  } finally {
    await outputs
      .remove()
      .catch((err: Error) => log.warn({ err: err.message }, 'could not remove the output directory'));
  }
}

/**
 * The error a failed run ends with. A stage that fails in a way nobody foresaw is named by the
 * stage: before the container call it is "preparing", after the container answered "returning
 * the response", never a guess that blames the wrong side.
 */
function asSidecarError(err: unknown, signal: AbortSignal, stage: Stage): SidecarError {
  if (signal.aborted && signal.reason instanceof SidecarError) return signal.reason;
  if (err instanceof SidecarError) return err;
  const code = stage.answered ? 'RELAY_FAILED' : 'PREPARE_FAILED';
  return new SidecarError(code, (err as Error)?.message ?? String(err), { cause: err });
}

/** How far a run got: set once the container has answered. */
interface Stage {
  answered: boolean;
}
