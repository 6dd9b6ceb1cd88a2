/**
 * The one place NATS errors are recognised, by code and never by message text (texts change
 * between server versions; codes are the API). nats.js puts its own reason in `NatsError.code`
 * (a string such as 'TIMEOUT', or an HTTP-like status), and a JetStream API refusal in
 * `api_error.err_code`, the server's stable number for each kind of error.
 */

/** What a NATS error means to the code that caught it. */
export type NatsErrorKind =
  /** The stream, consumer or message asked for does not exist. */
  | 'not-found'
  /** A create lost a race, or the thing exists with another configuration: leave it be. */
  | 'exists'
  /** A stream limit refused a publish (max messages, max bytes, storage): the queue is full. */
  | 'full'
  /** NATS or JetStream cannot be reached right now; the same call may work in a moment. */
  | 'unreachable'
  | 'other';

/** JetStream API error codes (nats-server's `err_code`), by what they mean here. */
const JETSTREAM_CODES: Readonly<Record<number, NatsErrorKind>> = {
  10059: 'not-found', // stream not found
  10014: 'not-found', // consumer not found
  10037: 'not-found', // no message found
  10058: 'exists', // stream name already in use with a different configuration
  10013: 'exists', // consumer name already in use
  10148: 'exists', // consumer already exists
  10077: 'full', // maximum messages (or bytes) exceeded, with discard: new
  10023: 'full', // insufficient resources
  10047: 'full', // insufficient storage resources available
};

/** nats.js codes that mean the server is out of reach, not that the call was wrong. */
const UNREACHABLE_CODES = new Set([
  'TIMEOUT',
  'DISCONNECT',
  'CONNECTION_CLOSED',
  'CONNECTION_DRAINING',
  'CONNECTION_REFUSED',
  'CONNECTION_TIMEOUT',
  // No responders: nothing answered the JetStream API or the publish (a server restarting, a
  // stream still being recovered). With an `api_error` attached, the code below decides instead.
  '503',
]);

export interface ClassifiedNatsError {
  kind: NatsErrorKind;
  /** The code that decided it (JetStream err_code, or nats.js code), for logs and messages. */
  code: string | undefined;
}

interface NatsLike {
  code?: unknown;
  api_error?: { err_code?: unknown };
}

export function classifyNatsError(err: unknown): ClassifiedNatsError {
  if (!err || typeof err !== 'object') return { kind: 'other', code: undefined };
  const { code, api_error: api } = err as NatsLike;
  if (api && typeof api.err_code === 'number') {
    return { kind: JETSTREAM_CODES[api.err_code] ?? 'other', code: String(api.err_code) };
  }
  // Direct Get answers a missing message with a bare 404 status and no API error.
  if (code === '404') return { kind: 'not-found', code };
  if (typeof code === 'string') return { kind: UNREACHABLE_CODES.has(code) ? 'unreachable' : 'other', code };
  return { kind: 'other', code: undefined };
}

export const isNatsNotFound = (err: unknown): boolean => classifyNatsError(err).kind === 'not-found';

/** A publish refused by the stream's own limits: a work queue at its GATEWAY_QUEUE_MAX. */
export const isStreamFull = (err: unknown): boolean => classifyNatsError(err).kind === 'full';

/**
 * Nothing answered at all (nats.js code 503, no API error): JetStream has no leader for the
 * stream right now, as while a cluster elects one, or a server is still recovering it. The call
 * reached no one, so nothing was stored and it may be made again.
 */
export const isNoResponders = (err: unknown): boolean => {
  const { code, api_error: api } = (err ?? {}) as NatsLike;
  return code === '503' && api === undefined;
};

/** The code when NATS is out of reach for the moment; undefined for any other error. */
export function unreachableNats(err: unknown): string | undefined {
  const classified = classifyNatsError(err);
  return classified.kind === 'unreachable' ? classified.code : undefined;
}
