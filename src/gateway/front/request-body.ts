import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { HttpProblem } from './http.js';

/** A request body as the gateway queues it: inline in the invocation, or parked for the worker. */
export type TakenBody = { inline: Buffer } | { parked: number };

/** The rest of a refused body is not worth reading: the connection closes after the answer. */
const CLOSE = { Connection: 'close' };

function tooLarge(limit: number): HttpProblem {
  return new HttpProblem(413, `the request body is larger than ${limit} bytes, the most this gateway accepts`, CLOSE);
}

/**
 * Takes a request body without holding more than one frame of it in memory: a body that fits
 * `inlineLimit` is returned whole; a larger one is streamed, as it arrives, into `park` (the
 * object store the worker reads it from), and refused with 413 as soon as it passes `maxBytes`.
 */
export async function takeBody(
  req: IncomingMessage,
  inlineLimit: number,
  maxBytes: number,
  park: (body: Readable) => Promise<unknown>,
): Promise<TakenBody> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > maxBytes)
    throw new HttpProblem(
      413,
      `the request body is ${declared} bytes; this gateway accepts at most ${maxBytes}`,
      CLOSE,
    );
  const chunks = req[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const head: Buffer[] = [];
  let size = 0;
  for (;;) {
    const next = await chunks.next();
    if (next.done) return { inline: Buffer.concat(head, size) };
    head.push(next.value);
    size += next.value.length;
    if (size > maxBytes) throw tooLarge(maxBytes);
    if (size > inlineLimit) break;
  }
  let overLimit = false;
  async function* rest(): AsyncGenerator<Buffer> {
    yield* head.splice(0);
    for (;;) {
      const next = await chunks.next();
      if (next.done) return;
      size += next.value.length;
      if (size > maxBytes) {
        overLimit = true;
        throw tooLarge(maxBytes);
      }
      yield next.value;
    }
  }
  try {
    await park(Readable.from(rest()));
  } catch (err) {
    if (overLimit) throw tooLarge(maxBytes);
    throw err;
  }
  return { parked: size };
}
