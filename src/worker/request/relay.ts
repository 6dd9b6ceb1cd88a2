import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PROBLEM_CONTENT_TYPE, SidecarError, problemForContainer, type Problem } from '../../shared/errors.js';
import type { ContainerAnswer } from './container-client.js';
import { isEventStream, relayableResponseHeaders } from '../../shared/headers.js';
import type { RequestOutputs } from '../outputs/output-dir.js';
import type { HeaderList } from '../../shared/protocol.js';
import type { ResponsePublisher } from './publisher.js';

export type Relayed = {
  status: number;
  mode: 'inline' | 'streamed' | 'problem' | 'large';
  /** The start of the container's own error body (mode 'problem'), for the log: the caller may get only a generic detail. */
  containerError?: string;
};

const LOGGED_ERROR_BYTES = 1024;

/** Pass-through: status and headers now, then every chunk as it arrives, verbatim. */
export async function relayStream(answer: ContainerAnswer, publisher: ResponsePublisher): Promise<Relayed> {
  const headers = relayableResponseHeaders(answer.headers);
  await publisher.head(answer.status, headers);
  let broke: string | undefined;
  try {
    for await (const chunk of answer.body) await publisher.chunk(chunk as Buffer);
  } catch (err) {
    if (err instanceof SidecarError) throw err;
    broke = `the container's response body broke off: ${(err as Error).message}`;
  }
  await publisher.endStream(answer.status, headers, broke);
  return { status: answer.status, mode: 'streamed' };
}

export interface CompatibilityOptions {
  requestId: string;
  maxResponseSizeBytes: number;
  outputs: RequestOutputs;
  downloadUrl: string | undefined;
  /** Where a body over the inline limit is parked while the large result is built. */
  spoolPath: string;
}

/**
 * Compatibility mode (NVCF's default for pexec): errors become problem+json; a body up to the
 * limit with no output files comes back inline with the container's status and headers; a larger
 * body, or any finished output file, becomes a zip behind a 302. SSE is never buffered.
 */
export async function relayCompatible(
  answer: ContainerAnswer,
  publisher: ResponsePublisher,
  options: CompatibilityOptions,
): Promise<Relayed> {
  const contentType = answer.headers['content-type'];
  if (isEventStream(Array.isArray(contentType) ? contentType[0] : contentType)) {
    options.outputs.abandon();
    return relayStream(answer, publisher);
  }
  if (answer.status >= 400) {
    options.outputs.abandon();
    const { parts, overflow } = await readUpTo(answer.body, options.maxResponseSizeBytes);
    if (overflow) discard(answer.body);
    const body = Buffer.concat(parts);
    await publishProblem(publisher, problemForContainer(answer.status, body, options.requestId));
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
  const { parts, overflow, rest } = await readUpTo(answer.body, options.maxResponseSizeBytes);
  const hasOutputs = await options.outputs.settle();
  if (!overflow && !hasOutputs) {
    await publisher.final(answer.status, relayableResponseHeaders(answer.headers), Buffer.concat(parts));
    return { status: answer.status, mode: 'inline' };
  }
  if (!options.downloadUrl)
    throw new SidecarError('LARGE_RESULT_FAILED', 'the result is large but the request has no download URL for it');
  let manifest;
  if (overflow) {
    try {
      await spool(parts, rest, options.spoolPath);
      manifest = await options.outputs.finish({ file: options.spoolPath });
    } finally {
      await rm(options.spoolPath, { force: true });
    }
  } else {
    manifest = await options.outputs.finish({ bytes: Buffer.concat(parts) });
  }
  await publisher.final(302, [['Location', options.downloadUrl]], new Uint8Array(0), manifest);
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

/** Writes a large body to disk, so the zip can be built, and rebuilt, with flat memory. */
async function spool(prefix: Buffer[], rest: AsyncIterator<Buffer>, path: string): Promise<void> {
  async function* all() {
    yield* prefix;
    for (let next = await rest.next(); !next.done; next = await rest.next()) yield next.value;
  }
  try {
    await pipeline(all, createWriteStream(path, { mode: 0o600 }));
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
