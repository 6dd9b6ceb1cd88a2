import type { z } from 'zod';
import { NvcfError } from './errors.js';
import { Invocation, ResponseMeta } from './protocol.js';

/**
 * Every message on NATS is a frame: one line of UTF-8 JSON (the metadata, validated by a schema
 * of protocol.ts), a newline, then the raw body bytes. JSON.stringify never emits a raw newline,
 * so the first 0x0A always ends the metadata, and bodies never pay for base64.
 */
export interface Frame<Meta> {
  meta: Meta;
  body: Uint8Array;
}

const NEWLINE = 0x0a;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeFrame(meta: object, body: Uint8Array = new Uint8Array(0)): Uint8Array {
  const head = encoder.encode(JSON.stringify(meta));
  const frame = new Uint8Array(head.length + 1 + body.length);
  frame.set(head, 0);
  frame[head.length] = NEWLINE;
  frame.set(body, head.length + 1);
  return frame;
}

/** A message that is not a valid frame: sending it again cannot make it valid. */
export class FrameError extends NvcfError {
  override name = 'FrameError';
  readonly retry = 'give-up';
  /** What could be read of the metadata before validation failed: enough to address a reply. */
  constructor(
    message: string,
    readonly partial: unknown = undefined,
  ) {
    super(message);
  }
}

function splitFrame(data: Uint8Array): { json: unknown; body: Uint8Array } {
  const end = data.indexOf(NEWLINE);
  if (end < 0) throw new FrameError('not a frame: no newline after the metadata line');
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(data.subarray(0, end)));
  } catch (err) {
    throw new FrameError(`metadata line is not valid JSON: ${(err as Error).message}`);
  }
  return { json, body: data.subarray(end + 1) };
}

function describe(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || 'message'} ${i.message}`).join('; ');
}

/**
 * A frame whose reply subject is not its own request's: it could answer someone else's call,
 * so nobody is answered about it (the subject it names is no trustworthy address).
 */
export class ForeignReplyError extends FrameError {
  override name = 'ForeignReplyError';
}

/** A reply subject belongs to a request when it ends in `.<requestId>`, as `subjects.replyTo` builds it. */
function replyToBelongs(replyTo: string, requestId: string): boolean {
  return replyTo.endsWith(`.${requestId}`);
}

export function decodeInvocation(data: Uint8Array): Frame<Invocation> {
  const { json, body } = splitFrame(data);
  const parsed = Invocation.safeParse(json);
  if (!parsed.success) throw new FrameError(`invalid invocation: ${describe(parsed.error)}`, json);
  if (!replyToBelongs(parsed.data.replyTo, parsed.data.requestId)) {
    throw new ForeignReplyError(
      `invalid invocation: replyTo ${parsed.data.replyTo} does not end in its requestId ${parsed.data.requestId}`,
    );
  }
  if (parsed.data.bodyUrl && body.length > 0) {
    throw new FrameError('invalid invocation: a message with bodyUrl must carry no inline body', json);
  }
  return { meta: parsed.data, body };
}

/**
 * Why a response's metadata is not valid, or undefined when it is: the one check both the worker
 * (before it publishes) and every reader (on decode) apply, so nothing is sent that a reader drops.
 */
export function responseMetaProblem(meta: unknown): string | undefined {
  const parsed = ResponseMeta.safeParse(meta);
  return parsed.success ? undefined : describe(parsed.error);
}

export function decodeResponse(data: Uint8Array): Frame<ResponseMeta> {
  const { json, body } = splitFrame(data);
  const parsed = ResponseMeta.safeParse(json);
  if (!parsed.success) throw new FrameError(`invalid response: ${describe(parsed.error)}`, json);
  return { meta: parsed.data, body };
}

/**
 * Where to send an error about a message that failed validation, if its remains say so
 * plausibly: the reply prefix and request id must themselves be well formed.
 */
export function replyAddressOf(partial: unknown): { replyTo: string; requestId: string } | undefined {
  if (!partial || typeof partial !== 'object') return undefined;
  const { replyTo, requestId } = partial as Record<string, unknown>;
  const ok =
    Invocation.shape.replyTo.safeParse(replyTo).success &&
    typeof requestId === 'string' &&
    requestId.length <= 128 &&
    replyToBelongs(replyTo as string, requestId);
  return ok ? { replyTo: replyTo as string, requestId: requestId } : undefined;
}
