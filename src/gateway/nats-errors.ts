/**
 * How the gateway tells NATS errors apart, by code where nats.js gives one. (When the shared
 * classifier lands, these become thin names for it.)
 */

/** JetStream's "stream store failed" code: a publish refused by the stream's own limits (messages or bytes). */
const STREAM_LIMIT_ERR_CODE = 10077;

/** nats.js error codes that mean NATS is out of reach for now, not that the call is wrong. */
const NATS_UNREACHABLE = new Set([
  'TIMEOUT',
  'DISCONNECT',
  'CONNECTION_CLOSED',
  'CONNECTION_DRAINING',
  'CONNECTION_REFUSED',
  '503',
]);

interface NatsLikeError {
  code?: unknown;
  message?: unknown;
  api_error?: { err_code?: number };
}

/** True when a publish was refused because the stream is full (work queue at its limit). */
export function isStreamFull(err: unknown): boolean {
  return (err as NatsLikeError)?.api_error?.err_code === STREAM_LIMIT_ERR_CODE;
}

/** The nats.js code when NATS is out of reach for the moment; undefined for any other error. */
export function unreachableNats(err: unknown): string | undefined {
  if (isStreamFull(err)) return undefined;
  const code = (err as NatsLikeError)?.code;
  return typeof code === 'string' && NATS_UNREACHABLE.has(code) ? code : undefined;
}

/** A stream, consumer or message that does not exist (JetStream answers 404 / "not found"). */
export function isNotFound(err: unknown): boolean {
  const { code, message } = (err as NatsLikeError) ?? {};
  return code === '404' || /not found|no message found/i.test(typeof message === 'string' ? message : '');
}
