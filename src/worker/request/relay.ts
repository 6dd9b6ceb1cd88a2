import type { Readable } from 'node:stream';
import type { NatsConnection } from 'nats';
import { PROBLEM_CONTENT_TYPE, SidecarError, problemForContainer, type Problem } from '../../shared/errors.js';
import type { ContainerAnswer } from './container-client.js';
import { isEventStream, relayableResponseHeaders } from '../../shared/headers.js';
import type { RequestOutputs } from '../outputs/output-dir.js';
import type { HeaderList } from '../../shared/protocol.js';
import type { ResponsePublisher } from './publisher.js';
import { StreamCredit } from './stream-credit.js';

export type Relayed = {
  status: number;
  mode: 'inline' | 'streamed' | 'problem' | 'large';
  /** The start of the container's own error body (mode 'problem'), for the log: the caller may get only a generic detail. */
  containerError?: string;
};

const LOGGED_ERROR_BYTES = 1024;

/** What paces a stream to its reader: where the gateway's reports arrive, and the request's abort. */
export interface StreamPace {
  nc: NatsConnection;
  requestId: string;
  signal: AbortSignal;
  /** STREAM_READER_TIMEOUT: how long a stream held at its bound waits for a report of its reader. */
  readerTimeoutMs: number;
}

/**
 * Pass-through: status and headers now, then every chunk as it arrives, verbatim, never more
 * than STREAM_AHEAD_BYTES ahead of what the gateway has written to its client.
 */
export async function relayStream(
  answer: ContainerAnswer,
  publisher: ResponsePublisher,
  { nc, requestId, signal, readerTimeoutMs }: StreamPace,
): Promise<Relayed> {
  const headers = relayableResponseHeaders(answer.headers);
  await publisher.head(answer.status, headers);
  const credit = new StreamCredit(nc, requestId, readerTimeoutMs);
  let broke: string | undefined;
  try {
    for await (const chunk of answer.body) {
      await credit.room(signal);
      credit.sent((chunk as Buffer).length);
      await publisher.chunk(chunk as Buffer);
    }
  } catch (err) {
    if (err instanceof SidecarError) throw err;
    broke = `the container's response body broke off: ${(err as Error).message}`;
  } finally {
    credit.close();
  }
  await publisher.endStream(answer.status, headers, broke);
  return { status: answer.status, mode: 'streamed' };
}

export interface CompatibilityOptions {
  maxResponseSizeBytes: number;
  outputs: RequestOutputs;
  pace: StreamPace;
}

/**
 * Compatibility mode (NVCF's default for pexec): errors become problem+json; a body up to the
 * limit with no output files comes back inline with the container's status and headers; a larger
 * body, or any finished output file, becomes a zip behind a 302. SSE is never buffered.
 */
export async function relayCompatible(
  answer: ContainerAnswer,
  publisher: ResponsePublisher,
  { maxResponseSizeBytes, outputs, pace }: CompatibilityOptions,
): Promise<Relayed> {
  const contentType = answer.headers['content-type'];
  if (isEventStream(Array.isArray(contentType) ? contentType[0] : contentType)) {
    outputs.abandon();
    return relayStream(answer, publisher, pace);
  }
  if (answer.status >= 400) {
    outputs.abandon();
    const { parts, overflow } = await readUpTo(answer.body, maxResponseSizeBytes);
    if (overflow) discard(answer.body);
    const body = Buffer.concat(parts);
    await publishProblem(publisher, problemForContainer(answer.status, body, pace.requestId));
    return {
      status: answer.status,
      mode: 'problem',
      containerError: body.subarray(0, LOGGED_ERROR_BYTES).toString('utf8'),
    };
  }
  if (answer.status === 202) {
    discard(answer.body);
    throw new SidecarError(
      'RESPONSE_UNSUPPORTED',
      'the container answered 202, which compatibility mode reserves for progress; write the progress file instead, or send nvcf-feature-disable-worker-compatibility: true',
    );
  }
  const { parts, overflow, rest } = await readUpTo(answer.body, maxResponseSizeBytes);
  const hasOutputs = await outputs.settle();
  if (!overflow && !hasOutputs) {
    await publisher.final(answer.status, relayableResponseHeaders(answer.headers), Buffer.concat(parts));
    return { status: answer.status, mode: 'inline' };
  }
  const large = await outputs.shipLarge(parts, overflow ? rest : undefined);
  await publisher.final(302, [['Location', large.location]], new Uint8Array(0), large.manifest);
  return { status: 302, mode: 'large' };
}

export async function publishProblem(publisher: ResponsePublisher, problem: Problem): Promise<void> {
  const headers: HeaderList = [['Content-Type', PROBLEM_CONTENT_TYPE]];
  await publisher.final(problem.status, headers, Buffer.from(JSON.stringify(problem)));
}

interface Prefix {
  parts: Buffer[];
  /** True when the body goes on past `limit`; the rest is still unread in `rest`. */
  overflow: boolean;
  rest: AsyncIterator<Buffer>;
}

/** Reads a body up to `limit` bytes; past that it stops and leaves the rest unread. */
async function readUpTo(body: Readable, limit: number): Promise<Prefix> {
  const rest = body[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for (;;) {
      const next = await rest.next();
      if (next.done) return { parts, overflow: false, rest };
      parts.push(next.value);
      size += next.value.length;
      if (size > limit) return { parts, overflow: true, rest };
    }
  } catch (err) {
    throw new SidecarError(
      'INFERENCE_CONNECTION',
      `reading the container's response failed: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Stops reading a body; undici reports the abort as an error, which nobody needs to hear. */
export function discard(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}
