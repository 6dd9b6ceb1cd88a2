import { chmod, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { JetStreamClient, JetStreamManager, JsMsg } from 'nats';
import { downloadAssets } from './asset-download.js';
import type { CancelRegistry } from '../cancels.js';
import type { WorkerConfig } from '../config.js';
import { SidecarError, problemForError } from '../../shared/errors.js';
import type { ContainerClient } from './container-client.js';
import { containerRequestHeaders, wantsPassThrough } from '../../shared/headers.js';
import type { Logger } from '../../shared/log.js';
import type { Outcome, WorkerMetrics } from '../metrics.js';
import { RequestOutputs } from '../outputs/output-dir.js';
import {
  DEFAULT_REQUEST_LIFETIME_MS,
  EXPIRY_GRACE_MS,
  FrameError,
  decodeInvocation,
  replyAddressOf,
  type Invocation,
} from '../../shared/protocol.js';
import { ResponsePublisher, alreadyAnswered } from './publisher.js';
import { discard, publishProblem, relayCompatible, relayStream, type Relayed } from './relay.js';

export interface HandlerDeps {
  config: WorkerConfig;
  js: JetStreamClient;
  jsm: JetStreamManager;
  container: ContainerClient;
  cancels: CancelRegistry;
  /** The real path of BASE_RESPONSE_DIR, resolved once at start. */
  realResponseDir: string;
  /** The consumer's max_deliver: the delivery after which JetStream gives up on a message. */
  maxDeliver: number;
  log: Logger;
  metrics: WorkerMetrics;
  bodyLimit: number;
}

/** How long an unstarted request waits before another delivery when it is handed back. */
export const RETRY_DELAY_MS = 1_000;

export type HandledOutcome = Outcome | 'returned';

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

  const address = {
    replyTo: invocation.replyTo,
    requestId: invocation.requestId,
    workerId: deps.config.workerId,
    attempt,
  };
  const publisher = new ResponsePublisher(deps.js, address, deps.bodyLimit, (s) => deps.metrics.publish.observe(s));
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
  const dirs = requestDirs(deps.config, invocation.requestId);
  try {
    const relayed = await run(invocation, body, publisher, controller.signal, dirs, deps, log);
    msg.ack();
    log.info({ status: relayed.status, mode: relayed.mode }, 'request finished');
    // A container error is the one body that is logged (its first KiB): the caller may see only
    // "Inference error", and whoever runs the container needs its own words. 5xx is its fault.
    if (relayed.containerError !== undefined)
      log[relayed.status >= 500 ? 'warn' : 'info'](
        { status: relayed.status, containerBody: relayed.containerError },
        'the container answered with an error',
      );
    return relayed.mode === 'problem' ? 'container_error' : 'ok';
  } catch (err) {
    return await settleFailure(msg, asSidecarError(err, controller.signal), publisher, invocation.requestId, deps, log);
  } finally {
    clearTimeout(timer);
    deps.cancels.finish(invocation.requestId);
    // The asset directory exists only when there were assets; not probing for it saves a
    // failing lstat per request on the hot path.
    const remove = invocation.assets.length > 0 ? [dirs.assets, dirs.output] : [dirs.output];
    await Promise.all(remove.map((dir) => rm(dir, { recursive: true, force: true }))).catch((err: Error) =>
      log.warn({ err: err.message }, 'could not remove the request directories'),
    );
  }
}

const MAX_TIMER_MS = 2 ** 31 - 1;

/** A message on its last delivery that cannot be started here is answered, not handed back. */
export async function refuseDelivery(msg: JsMsg, gate: 'unhealthy' | 'draining', deps: HandlerDeps): Promise<void> {
  let invocation: Invocation;
  try {
    invocation = decodeInvocation(msg.data).meta;
  } catch (err) {
    return answerMalformed(msg, err as Error, deps);
  }
  const address = {
    replyTo: invocation.replyTo,
    requestId: invocation.requestId,
    workerId: deps.config.workerId,
    attempt: msg.info.deliveryCount,
  };
  const reason =
    gate === 'draining'
      ? new SidecarError('DRAINING', 'the worker is shutting down')
      : new SidecarError('CONTAINER_UNHEALTHY', 'the inference container is not healthy');
  await publishProblem(
    new ResponsePublisher(deps.js, address, deps.bodyLimit),
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
async function settleFailure(
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

async function run(
  invocation: Invocation,
  body: Uint8Array,
  publisher: ResponsePublisher,
  signal: AbortSignal,
  dirs: { assets: string; output: string },
  deps: HandlerDeps,
  log: Logger,
): Promise<Relayed> {
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
  await downloadAssets(invocation.assets, dirs.assets, deps.config.assetLimits, signal);
  try {
    await mkdir(dirs.output, { recursive: true, mode: 0o777 });
    // mkdir's mode is filtered by the umask; the container may run as another user.
    await chmod(dirs.output, 0o777);
  } catch (err) {
    throw new SidecarError(
      'PREPARE_FAILED',
      `could not create the output directory: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      { cause: err },
    );
  }

  const passThrough = wantsPassThrough(invocation.headers, deps.config.passThroughAlways);
  const { config } = deps;
  const headers = containerRequestHeaders(
    invocation.headers,
    {
      requestId: invocation.requestId,
      subject: invocation.subject,
      ncaId: invocation.ncaId,
      functionName: config.functionName,
      functionId: config.functionId,
      functionVersionId: config.functionVersionId,
      assetDir: dirs.assets,
      largeOutputDir: dirs.output,
      maxResponseSizeBytes: invocation.maxResponseSizeBytes,
      ...config.pod,
      assetIds: invocation.assets.map((a) => a.assetId),
      pollSecondsLeft: Math.max(0, Math.floor((windowEnd - startedAt) / 1000)),
    },
    !passThrough,
  );
  // Progress, finished files and large results belong to compatibility mode, as in NVCF.
  const outputs = passThrough
    ? undefined
    : new RequestOutputs({
        requestId: invocation.requestId,
        dir: dirs.output,
        realBase: deps.realResponseDir,
        uploadUrl: invocation.largeResult?.uploadUrl,
        publisher,
        log,
        signal,
      }).init();
  try {
    log.debug({ method: invocation.method, path: invocation.path, passThrough }, 'calling the container');
    const answer = await deps.container.call({
      method: invocation.method,
      path: invocation.path,
      headers,
      body: invocation.bodyUrl ? { url: invocation.bodyUrl } : body,
      signal,
    });
    try {
      const relayed = outputs
        ? await relayCompatible(answer, publisher, {
            requestId: invocation.requestId,
            maxResponseSizeBytes: invocation.maxResponseSizeBytes,
            outputs,
            downloadUrl: invocation.largeResult?.downloadUrl,
            spoolPath: join(deps.config.spoolDir, `${invocation.requestId}.${publisher.attempt}.response`),
          })
        : await relayStream(answer, publisher);
      deps.metrics.inference.observe((Date.now() - startedAt) / 1000);
      return relayed;
    } finally {
      // A body left half read would hold one of the pool's few connections for ever.
      if (!answer.body.readableEnded) discard(answer.body);
    }
  } finally {
    if (!publisher.done) outputs?.abandon();
  }
}

function requestDirs(config: WorkerConfig, requestId: string) {
  // The request id is a validated UUID, so these joins cannot leave the base directories.
  return { assets: join(config.assetDir, requestId), output: join(config.responseDir, requestId) };
}

function asSidecarError(err: unknown, signal: AbortSignal): SidecarError {
  if (signal.aborted && signal.reason instanceof SidecarError) return signal.reason;
  if (err instanceof SidecarError) return err;
  return new SidecarError('PREPARE_FAILED', (err as Error)?.message ?? String(err), { cause: err });
}

async function answerMalformed(msg: JsMsg, err: Error, deps: HandlerDeps): Promise<void> {
  const address = err instanceof FrameError ? replyAddressOf(err.partial) : undefined;
  deps.log.warn(
    { seq: msg.seq, subject: msg.subject, err: err.message, answered: Boolean(address) },
    'malformed invocation message; terminating it',
  );
  if (address) {
    const publisher = new ResponsePublisher(
      deps.js,
      { ...address, workerId: deps.config.workerId, attempt: msg.info.deliveryCount },
      deps.bodyLimit,
    );
    const problem = problemForError(new SidecarError('INVALID_INVOCATION', err.message), address.requestId);
    await publishProblem(publisher, problem).catch((publishErr: Error) =>
      deps.log.error({ err: publishErr.message }, 'could not publish the malformed-message problem'),
    );
  }
  msg.term();
}
