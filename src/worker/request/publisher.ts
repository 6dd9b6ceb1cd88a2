import { setTimeout as sleep } from 'node:timers/promises';
import type { JetStreamClient, JetStreamManager } from 'nats';
import { SidecarError } from '../../shared/errors.js';
import { isNatsNotFound } from '../../shared/nats-errors.js';
import {
  PROTOCOL_VERSION,
  messageIds,
  streams,
  subjects,
  type HeaderList,
  type OutputFile,
  type ResponseKind,
  type ResponseMetaInput,
} from '../../shared/protocol.js';
import { encodeFrame, responseMetaProblem } from '../../shared/frame-codec.js';

/** How long a durable publish keeps retrying through a NATS outage before giving up. */
const PUBLISH_RETRY_MS = 60_000;
/** Unacknowledged publishes allowed per stream of chunks; bounds memory, keeps the pipe full. */
const PUBLISH_WINDOW = 32;

export type ResultManifest = NonNullable<Extract<ResponseMetaInput, { kind: 'final' }>['manifest']>;

export interface ResponseAddress {
  replyTo: string;
  requestId: string;
  workerId: string;
  attempt: number;
}

/** True when some earlier run of this request already published its final response. */
export async function alreadyAnswered(jsm: JetStreamManager, replyTo: string): Promise<boolean> {
  try {
    await jsm.streams.getMessage(streams.results, { last_by_subj: subjects.response(replyTo, 'final') });
    return true;
  } catch (err) {
    if (isNatsNotFound(err)) return false;
    throw err;
  }
}

/**
 * Publishes the responses of one request run, in the order the protocol promises: progress
 * until the final; head and numbered chunks before the final that counts them; one final.
 * Every publish waits for JetStream's ack (the gateway may be away) and carries a message id,
 * so a retry after a lost ack is dropped by the stream instead of doubling a result.
 */
export class ResponsePublisher {
  private pending: Promise<void>[] = [];
  private chunkCount = 0;
  private headSent: { status: number; headers: HeaderList } | undefined;
  private finished = false;

  constructor(
    private readonly js: JetStreamClient,
    private readonly address: ResponseAddress,
    private readonly bodyLimit: number,
    /** Told how long the final took to be acknowledged, for the publish-latency metric. */
    private readonly observeFinal: (seconds: number) => void = () => undefined,
  ) {}

  get done(): boolean {
    return this.finished;
  }

  get attempt(): number {
    return this.address.attempt;
  }

  /** Best effort by design: a newer progress report supersedes a lost one. */
  async progress(percentComplete: number, headers: HeaderList, body: Uint8Array): Promise<void> {
    if (this.finished) return;
    await this.send('progress', { kind: 'progress', percentComplete, headers }, body, undefined, 0);
  }

  /** Announces output files that became final; best effort, like progress. */
  async output(files: OutputFile[]): Promise<void> {
    if (this.finished || files.length === 0) return;
    await this.send('output', { kind: 'output', files }, undefined, undefined, 0);
  }

  async head(status: number, headers: HeaderList): Promise<void> {
    // Checked before the stream counts as started: a head that cannot be sent leaves room for a problem.
    const frame = this.frame('head', { kind: 'head', status, headers });
    this.headSent = { status, headers };
    await this.publish('head', frame, this.msgId('head'));
  }

  /** True once a head is (being) published: the caller may already hold part of the stream. */
  get streaming(): boolean {
    return this.headSent !== undefined;
  }

  /** Queues body bytes as chunk messages; resolves once the publish window has room again. */
  async chunk(bytes: Uint8Array): Promise<void> {
    for (let offset = 0; offset < bytes.length; offset += this.bodyLimit) {
      const index = this.chunkCount++;
      const piece = bytes.subarray(offset, offset + this.bodyLimit);
      const sent = this.send('chunk', { kind: 'chunk', index }, piece, this.msgId(`c${index}`));
      sent.catch(() => undefined); // Observed when the window is settled below.
      this.pending.push(sent);
      if (this.pending.length >= PUBLISH_WINDOW) await this.pending.shift();
    }
  }

  /** The final of a buffered response: inline when it fits one frame, else chunks first. */
  async final(
    status: number,
    headers: HeaderList,
    body: Uint8Array = new Uint8Array(0),
    manifest?: ResultManifest,
  ): Promise<void> {
    if (body.length > this.bodyLimit) await this.chunk(body);
    const inline = this.chunkCount === 0 ? body : undefined;
    await this.finish(
      { kind: 'final', status, headers, chunks: this.chunkCount, streamed: false, ...(manifest ? { manifest } : {}) },
      inline,
    );
  }

  /** The final of a streamed (pass-through) response: marks the end of its chunks. */
  /** Ends a stream; status and headers default to the head's, `error` says it broke off. */
  async endStream(
    status = this.headSent?.status ?? 500,
    headers = this.headSent?.headers ?? [],
    error?: string,
  ): Promise<void> {
    await this.finish({
      kind: 'final',
      status,
      headers,
      chunks: this.chunkCount,
      streamed: true,
      ...(error ? { error } : {}),
    });
  }

  private async finish(
    meta: Omit<ResponseMetaInput & { kind: 'final' }, 'v' | 'requestId' | 'workerId' | 'attempt'>,
    body?: Uint8Array,
  ): Promise<void> {
    const window = this.pending;
    this.pending = [];
    await Promise.all(window);
    const started = performance.now();
    await this.send('final', meta, body, messageIds.final(this.address.requestId));
    this.observeFinal((performance.now() - started) / 1000);
    this.finished = true;
  }

  private msgId(part: string): string {
    return messageIds.ofAttempt(this.address.requestId, this.address.attempt, part);
  }

  private async send(
    kind: ResponseKind,
    meta: Record<string, unknown>,
    body: Uint8Array | undefined,
    msgID: string | undefined,
    retryForMs = PUBLISH_RETRY_MS,
  ): Promise<void> {
    await this.publish(
      kind,
      this.frame(kind, meta, body),
      msgID,
      retryForMs,
      kind === 'chunk' ? (meta.index as number) : undefined,
    );
  }

  /**
   * Encodes a message after checking it against the schema its reader applies: an answer the
   * protocol cannot carry (more than 256 headers, say) becomes a clear 502 here, instead of a
   * message every reader drops while the caller waits for ever. Chunks are built here alone.
   */
  private frame(kind: ResponseKind, meta: Record<string, unknown>, body?: Uint8Array): Uint8Array {
    const { requestId, workerId, attempt } = this.address;
    const full = { v: PROTOCOL_VERSION, requestId, workerId, attempt, ...meta };
    const problem = kind === 'chunk' ? undefined : responseMetaProblem(full);
    if (problem) throw new SidecarError('RESPONSE_UNREPRESENTABLE', `the ${kind} message would be invalid: ${problem}`);
    return encodeFrame(full, body);
  }

  private async publish(
    kind: ResponseKind,
    frame: Uint8Array,
    msgID: string | undefined,
    retryForMs = PUBLISH_RETRY_MS,
    chunkIndex?: number,
  ): Promise<void> {
    const { replyTo, attempt } = this.address;
    const subject = subjects.response(
      replyTo,
      kind,
      chunkIndex === undefined ? undefined : { attempt, index: chunkIndex },
    );
    const giveUpAt = Date.now() + retryForMs;
    for (let wait = 100; ; wait = Math.min(wait * 2, 2_000)) {
      try {
        await this.js.publish(subject, frame, msgID ? { msgID } : undefined);
        return;
      } catch (err) {
        if (Date.now() + wait > giveUpAt) {
          throw new SidecarError(
            'PUBLISH_FAILED',
            `publishing the ${kind} response failed: ${(err as Error).message}`,
            { cause: err },
          );
        }
        await sleep(wait);
      }
    }
  }
}
