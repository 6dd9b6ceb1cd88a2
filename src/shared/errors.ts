import { STATUS_CODES } from 'node:http';

/**
 * The one error vocabulary of the sidecar. Each code says what the caller sees (a problem+json
 * answer, or nothing yet) and what happens to the JetStream message: `answer` publishes the
 * problem and acks (giving up on the work), `retry` hands the work back to the queue (nak) so
 * another attempt, here or on another worker, can run it.
 */
const errorCodes = {
  INVALID_INVOCATION: { disposition: 'answer', status: 400, family: 'worker', detail: 'Malformed invocation message' },
  REQUEST_EXPIRED: {
    disposition: 'answer',
    status: 500,
    family: 'worker',
    detail: 'Internal error while making inference request',
  },
  ASSET_DOWNLOAD_FAILED: {
    disposition: 'answer',
    status: 500,
    family: 'worker',
    detail: 'Internal error while downloading assets',
  },
  /** Something unforeseen after the container answered, while its answer was carried back. */
  RELAY_FAILED: {
    disposition: 'answer',
    status: 500,
    family: 'worker',
    detail: 'Internal error while returning the inference response',
  },
  PREPARE_FAILED: {
    disposition: 'answer',
    status: 500,
    family: 'worker',
    detail: 'Internal error while preparing for inference',
  },
  REQUEST_BODY_FAILED: {
    disposition: 'answer',
    status: 500,
    family: 'worker',
    detail: 'Internal error while making inference request',
  },
  INFERENCE_CONNECTION: {
    disposition: 'answer',
    status: 500,
    family: 'connection',
    detail: 'Inference connection error while making inference request',
  },
  RESPONSE_UNSUPPORTED: {
    disposition: 'answer',
    status: 500,
    family: 'worker',
    detail: 'Internal error while making inference request',
  },
  RESPONSE_UNREPRESENTABLE: {
    disposition: 'answer',
    status: 502,
    family: 'worker',
    detail: "The container's response cannot be carried back to the caller",
  },
  LARGE_RESULT_FAILED: {
    disposition: 'answer',
    status: 500,
    family: 'worker',
    detail: 'Internal error while uploading the large response',
  },
  DEADLINE_EXCEEDED: {
    disposition: 'answer',
    status: 504,
    family: 'worker',
    detail: 'Inference did not finish before the request deadline',
  },
  CANCELLED: {
    disposition: 'answer',
    status: 500,
    family: 'worker',
    detail: 'The request was cancelled before inference finished',
  },
  CONTAINER_UNHEALTHY: {
    disposition: 'retry',
    status: 503,
    family: 'worker',
    detail: 'The inference container is not healthy',
  },
  DRAINING: { disposition: 'retry', status: 503, family: 'worker', detail: 'The worker is shutting down' },
  PUBLISH_FAILED: { disposition: 'retry', status: 503, family: 'worker', detail: 'The result could not be published' },
} as const;

export type ErrorCode = keyof typeof errorCodes;
export type Disposition = 'answer' | 'retry';

/**
 * What trying the same thing again would do: `retry`, it may work (a store hiccup, a NATS
 * outage, a worker shutting down), so hand it back or try again; `give-up`, it fails the same
 * way (bad input, a refusal, a configuration error), so report it and stop.
 */
export type RetryMeaning = 'retry' | 'give-up';

/**
 * The family every error the project throws on purpose belongs to: whoever catches one can ask
 * `retry` instead of knowing each kind. Errors from libraries (Node, nats.js, undici) are not in
 * it; code that meets them wraps them into one of these, naming what failed.
 */
export abstract class NvcfError extends Error {
  abstract readonly retry: RetryMeaning;
}

/** A failure of one request on the worker, with the answer it gets and what becomes of the message. */
export class SidecarError extends NvcfError {
  override name = 'SidecarError';
  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  get disposition(): Disposition {
    return errorCodes[this.code].disposition;
  }

  get retry(): RetryMeaning {
    return this.disposition === 'retry' ? 'retry' : 'give-up';
  }
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  requestId?: string;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function titleOf(status: number): string {
  return STATUS_CODES[status] ?? 'Error';
}

/** "Unprocessable Entity" → "unprocessable-entity": the last part of a problem type URN. */
function slug(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

/** The code of a network or file error, wherever it hides, for messages that name the cause. */
export function errorCode(err: unknown): string {
  const e = err as { code?: string; message?: string; cause?: { code?: string } } | undefined;
  return e?.code ?? e?.cause?.code ?? e?.message ?? String(err);
}

/** The problem NVCF's worker reports for a failure on the worker side of the call. */
export function problemForError(err: SidecarError, requestId?: string): Problem {
  const spec = errorCodes[err.code];
  const prefix = spec.family === 'connection' ? 'urn:inference-connection' : 'urn:nvcf-worker-service';
  const generic = spec.status === 500 ? 'internal-server-error' : slug(titleOf(spec.status));
  return {
    type: `${prefix}:problem-details:${generic}`,
    title: titleOf(spec.status),
    status: spec.status,
    // The caller gets the contract's wording plus the specific reason, which names the fix.
    detail: err.message && err.message !== spec.detail ? `${spec.detail}: ${err.message}` : spec.detail,
    ...(requestId ? { requestId } : {}),
  };
}

/**
 * Compatibility mode: a container answer of 400 or more becomes problem+json with the
 * container's status; `detail` is the string in its `{"error": ...}` body, else "Inference error".
 */
export function problemForContainer(status: number, body: Uint8Array, requestId?: string): Problem {
  const title = titleOf(status);
  return {
    type: `urn:inference-service:problem-details:${slug(title)}`,
    title,
    status,
    detail: containerErrorDetail(body) ?? 'Inference error',
    ...(requestId ? { requestId } : {}),
  };
}

function containerErrorDetail(body: Uint8Array): string | undefined {
  if (body.length === 0) return undefined;
  try {
    const parsed: unknown = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
    const error = parsed && typeof parsed === 'object' ? (parsed as { error?: unknown }).error : undefined;
    if (typeof error === 'string' && error.length > 0) return error;
    if (error !== undefined && error !== null && typeof error === 'object') return JSON.stringify(error);
  } catch {
    // Not JSON: the contract says the generic detail applies.
  }
  return undefined;
}
