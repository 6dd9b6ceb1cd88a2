import { readdir } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { PROBLEM_CONTENT_TYPE, SidecarError, problemForContainer, type Problem } from './errors.js';
import type { ContainerAnswer } from './forward.js';
import { isEventStream, relayableResponseHeaders } from './headers.js';
import type { HeaderList } from './protocol.js';
import type { ResponsePublisher } from './publish.js';

export type Relayed = { status: number; mode: 'inline' | 'streamed' | 'problem' };

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
  outputDir: string;
}

/**
 * Compatibility mode (NVCF's default for pexec): errors become problem+json, bodies up to the
 * limit come back inline with the container's status and headers. SSE is never buffered.
 */
export async function relayCompatible(answer: ContainerAnswer, publisher: ResponsePublisher, options: CompatibilityOptions): Promise<Relayed> {
  const contentType = answer.headers['content-type'];
  if (isEventStream(Array.isArray(contentType) ? contentType[0] : contentType)) return relayStream(answer, publisher);

  if (answer.status >= 400) {
    const body = await readUpTo(answer.body, options.maxResponseSizeBytes);
    await publishProblem(publisher, problemForContainer(answer.status, body ?? new Uint8Array(0), options.requestId));
    return { status: answer.status, mode: 'problem' };
  }
  if (answer.status === 202) {
    discard(answer.body);
    throw new SidecarError(
      'RESPONSE_UNSUPPORTED',
      'the container answered 202, which compatibility mode reserves for progress; write the progress file instead, or send nvcf-feature-disable-worker-compatibility: true',
    );
  }
  const body = await readUpTo(answer.body, options.maxResponseSizeBytes);
  if (body === undefined) {
    throw new SidecarError(
      'RESPONSE_UNSUPPORTED',
      `the response body is larger than NVCF-MAX-RESPONSE-SIZE-BYTES (${options.maxResponseSizeBytes}); large results are not supported by this worker version`,
    );
  }
  const outputs = await countOutputFiles(options.outputDir);
  if (outputs > 0) {
    throw new SidecarError(
      'RESPONSE_UNSUPPORTED',
      `the container left ${outputs} file(s) in NVCF-LARGE-OUTPUT-DIR; large results are not supported by this worker version`,
    );
  }
  await publisher.final(answer.status, relayableResponseHeaders(answer.headers), body);
  return { status: answer.status, mode: 'inline' };
}

export async function publishProblem(publisher: ResponsePublisher, problem: Problem): Promise<void> {
  const headers: HeaderList = [['Content-Type', PROBLEM_CONTENT_TYPE]];
  await publisher.final(problem.status, headers, Buffer.from(JSON.stringify(problem)));
}

/** The whole body, or undefined as soon as it passes `limit` (the rest is never read). */
async function readUpTo(body: Readable, limit: number): Promise<Buffer | undefined> {
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      size += (chunk as Buffer).length;
      if (size > limit) {
        discard(body);
        return undefined;
      }
      parts.push(chunk as Buffer);
    }
  } catch (err) {
    throw new SidecarError('INFERENCE_CONNECTION', `reading the container's response failed: ${(err as Error).message}`, { cause: err });
  }
  return Buffer.concat(parts, size);
}

/** Files the container left for the caller; `progress` is a channel, not an output. */
async function countOutputFiles(dir: string): Promise<number> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries.filter((e) => !e.isDirectory() && !(e.name === 'progress' && e.parentPath === dir)).length;
  } catch {
    return 0;
  }
}

/** Stops reading a body; undici reports the abort as an error, which nobody needs to hear. */
function discard(body: Readable): void {
  body.on('error', () => undefined);
  body.destroy();
}
