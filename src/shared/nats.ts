import { readFileSync } from 'node:fs';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  RetentionPolicy,
  StorageType,
  connect,
  credsAuthenticator,
  nanos,
  type ConnectionOptions,
  type JetStreamManager,
  type NatsConnection,
} from 'nats';
import { isNatsNotFound, classifyNatsError } from './nats-errors.js';
import {
  DEFAULT_STREAM_REPLICAS,
  FRAME_OVERHEAD_BYTES,
  RESULTS_DUPLICATE_WINDOW_MS,
  RESULTS_MAX_BYTES,
  RESULTS_PER_SUBJECT,
  streams,
  subjects,
  workQueueLimits,
} from './protocol.js';

export interface NatsSettings {
  servers: readonly string[];
  token?: string | undefined;
  user?: string | undefined;
  pass?: string | undefined;
  credsFile?: string | undefined;
}

/** Connect and keep reconnecting for ever: a NATS restart must not end a worker or a gateway. */
export async function connectNats(settings: NatsSettings, name: string): Promise<NatsConnection> {
  const options: ConnectionOptions = {
    servers: [...settings.servers],
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    waitOnFirstConnect: true,
    timeout: 5_000,
    // Capturing a stack for every request costs more than any error it might explain here.
    noAsyncTraces: true,
  };
  if (settings.token) options.token = settings.token;
  if (settings.user) Object.assign(options, { user: settings.user, pass: settings.pass });
  if (settings.credsFile) options.authenticator = credsAuthenticator(readFileSync(settings.credsFile));
  return connect(options);
}

export interface WorkQueueSettings {
  ackWaitMs: number;
  maxDeliver: number;
  /** Copies of the stream's data on a cluster (NATS_STREAM_REPLICAS); 1 on a single server. */
  replicas?: number;
  /** Queue depth at which publishing fails, which the gateway turns into 429. */
  maxMessages?: number;
}

async function exists(probe: () => Promise<unknown>): Promise<boolean> {
  try {
    await probe();
    return true;
  } catch (err) {
    if (isNatsNotFound(err)) return false;
    throw err;
  }
}

/**
 * Create the work-queue stream and shared consumer of a function version unless they exist.
 * Workers and gateways both call this; whichever comes first creates, and an existing setup
 * (perhaps tuned by an operator) is left as it is.
 */
export async function ensureWorkQueue(
  jsm: JetStreamManager,
  functionVersionId: string,
  settings: WorkQueueSettings,
): Promise<void> {
  const stream = streams.work(functionVersionId);
  if (!(await exists(() => jsm.streams.info(stream)))) {
    await addIgnoringRace(() =>
      jsm.streams.add({
        name: stream,
        subjects: [subjects.workFilter(functionVersionId)],
        retention: RetentionPolicy.Workqueue,
        storage: StorageType.File,
        discard: DiscardPolicy.New,
        max_msgs: settings.maxMessages ?? workQueueLimits.defaultMaxMessages,
        max_msgs_per_subject: workQueueLimits.messagesPerSubject,
        duplicate_window: nanos(workQueueLimits.duplicateWindowMs),
        max_age: nanos(workQueueLimits.maxAgeMs),
        num_replicas: settings.replicas ?? DEFAULT_STREAM_REPLICAS,
      }),
    );
  }
  if (!(await exists(() => jsm.consumers.info(stream, streams.workConsumer)))) {
    await addIgnoringRace(() =>
      jsm.consumers.add(stream, {
        durable_name: streams.workConsumer,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(settings.ackWaitMs),
        max_deliver: settings.maxDeliver,
        max_waiting: workQueueLimits.maxWaiting,
      }),
    );
  }
}

/**
 * The stream every response lands in, kept for `retentionMs` so a gateway can come back for it.
 * Readers use Direct Get (no consumer per read); a few messages per subject bound a request's
 * progress history (chunks, heads and finals each have subjects of their own); a byte bound
 * refuses new messages when full instead of dropping stored ones. An older stream is brought up
 * to this.
 */
export async function ensureResults(
  jsm: JetStreamManager,
  retentionMs: number,
  replicas = DEFAULT_STREAM_REPLICAS,
): Promise<void> {
  const limits = {
    allow_direct: true,
    max_msgs_per_subject: RESULTS_PER_SUBJECT,
    max_bytes: RESULTS_MAX_BYTES,
    discard: DiscardPolicy.New,
  };
  let existing;
  try {
    existing = await jsm.streams.info(streams.results);
  } catch (err) {
    if (!isNatsNotFound(err)) throw err;
  }
  if (existing) {
    const c = existing.config;
    if (!c.allow_direct || c.max_msgs_per_subject !== RESULTS_PER_SUBJECT || c.max_bytes <= 0)
      await jsm.streams.update(streams.results, { ...c, ...limits });
    return;
  }
  await addIgnoringRace(() =>
    jsm.streams.add({
      name: streams.results,
      subjects: [...streams.resultsSubjects],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      max_age: nanos(retentionMs),
      duplicate_window: nanos(Math.min(RESULTS_DUPLICATE_WINDOW_MS, retentionMs)),
      num_replicas: replicas,
      ...limits,
    }),
  );
}

/**
 * Two processes starting together both try to create; the loser is told it exists (with another
 * configuration, when the worker's and the gateway's defaults differ), which is fine.
 */
async function addIgnoringRace(add: () => Promise<unknown>): Promise<void> {
  try {
    await add();
  } catch (err) {
    if (classifyNatsError(err).kind !== 'exists') throw err;
  }
}

/** The largest body one frame may carry on this server. */
export function frameBodyLimit(nc: NatsConnection): number {
  const maxPayload = nc.info?.max_payload ?? 1024 * 1024;
  return Math.max(16 * 1024, maxPayload - FRAME_OVERHEAD_BYTES);
}
