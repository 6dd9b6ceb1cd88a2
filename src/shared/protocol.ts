import { z } from 'zod';

/**
 * nvcf-sidecar NATS protocol, version 1: every subject, stream and message that crosses NATS,
 * in one module that the worker, the gateway and the tests all import. docs/protocol.md is the
 * prose version of this file; change both together.
 *
 * Every message is a frame: one line of UTF-8 JSON (the metadata, validated by a schema below),
 * a newline, then the raw body bytes. JSON.stringify never emits a raw newline, so the first
 * 0x0A always ends the metadata, and bodies never pay for base64.
 */
export const PROTOCOL_VERSION = 1;

export const subjects = {
  /** Work queue of one function version; one subject per request keeps the stream inspectable. */
  work: (functionVersionId: string, requestId: string) => `nvcf.rq.${functionVersionId}.${requestId}`,
  workFilter: (functionVersionId: string) => `nvcf.rq.${functionVersionId}.*`,
  /**
   * The responses of one request: `<replyTo>.<kind>`, except chunks, which are
   * `<replyTo>.chunk.<attempt>.<index>`. One subject per chunk lets a reader ask JetStream for
   * the last message of every subject: the whole body, but only the latest progress.
   */
  response: (replyTo: string, kind: ResponseKind, chunk?: { attempt: number; index: number }) =>
    chunk ? `${replyTo}.chunk.${chunk.attempt}.${chunk.index}` : `${replyTo}.${kind}`,
  replyTo: (requestId: string) => `nvcf.rs.${requestId}`,
  responsesOf: (replyTo: string) => `${replyTo}.>`,
  /** Core NATS (not stored): the payload is the request id to abort. */
  cancel: (functionVersionId: string) => `nvcf.cancel.${functionVersionId}`,
} as const;

export const streams = {
  work: (functionVersionId: string) => `NVCF_RQ_${functionVersionId}`,
  /** Durable pull consumer shared by every worker of the version: how the fleet scales out. */
  workConsumer: 'workers',
  results: 'NVCF_RS',
  resultsSubjects: ['nvcf.rs.>'],
  /** Key-value bucket of worker state records, key `<functionVersionId>.<workerId>`. */
  workers: 'nvcf_workers',
  /** Key-value buckets of the harness's lifecycle API: function versions and their deployments, key `<functionVersionId>`. */
  functionVersions: 'nvcf_function_versions',
  deployments: 'nvcf_deployments',
} as const;

/**
 * Bytes NVCF_RS may hold. Full, it refuses new messages (a worker's publish waits and retries:
 * backpressure) rather than dropping stored ones, which could be a request's final. Delivered
 * results are removed by the gateway, so what it holds is the results nobody has fetched yet.
 */
export const RESULTS_MAX_BYTES = 4 * 1024 ** 3;
/**
 * Messages NVCF_RS keeps per subject. Chunks, heads and finals have subjects of their own; this
 * bounds a request's progress history (a job reporting every 100 ms for an hour would otherwise
 * keep 36,000), while a reader a few updates behind still sees each recent step.
 */
export const RESULTS_PER_SUBJECT = 8;

/** How often a worker rewrites its state record, and how long a silent record stays believable. */
export const HEARTBEAT_INTERVAL_MS = 5_000;
export const HEARTBEAT_STALE_MS = 15_000;
/** TTL of the workers bucket: how long the last record of a worker that died or failed lasts. */
export const WORKER_RECORD_TTL_MS = HEARTBEAT_STALE_MS * 4;

/** NVCF's inline limit: a body of exactly this many bytes stays inline (5 MiB, not 5 MB). */
export const DEFAULT_MAX_RESPONSE_SIZE_BYTES = 5 * 1024 * 1024;
/** Room left in each message for the metadata line and NATS headers. */
export const FRAME_OVERHEAD_BYTES = 64 * 1024;
/** A request more than this far past its poll window is answered with an error, not run. */
export const EXPIRY_GRACE_MS = 2_000;
/** The whole-request bound when the invocation names none (NVCF's IS gives up after 1 h). */
export const DEFAULT_REQUEST_LIFETIME_MS = 3_600_000;

/** Request, function, version and asset ids: UUIDs, so no id can ever be a path. */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const uuid = z.string().regex(UUID_PATTERN, 'must be a UUID');
const headerName = z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'is not a valid HTTP header name');
// What an HTTP/1.1 field value may hold (RFC 9110 §5.5): tab, visible ASCII, and obs-text
// bytes. Anything else is refused here with a clear 400, not passed to the HTTP client, which
// rejects it too, and whose connection pool a rejected request can leave wedged.

const headerValue = z
  .string()
  .regex(
    /^[\t\x20-\x7e\x80-\xff]*$/,
    'must hold only tab, visible ASCII or Latin-1 characters (no CR, LF, NUL or other control characters)',
  )
  .max(16 * 1024);
export const HeaderList = z.array(z.tuple([headerName, headerValue])).max(256, 'too many headers (at most 256)');
export type HeaderList = z.infer<typeof HeaderList>;
const httpUrl = z.url({ protocol: /^https?$/ });

export const AssetReference = z.object({
  assetId: uuid,
  url: httpUrl,
  contentType: z.string().default('application/octet-stream'),
});
export type AssetReference = z.infer<typeof AssetReference>;

/** Published by the gateway on `subjects.work(...)`; the frame body is the request body. */
export const Invocation = z
  .object({
    v: z.literal(PROTOCOL_VERSION),
    requestId: uuid,
    functionId: uuid,
    functionVersionId: uuid,
    ncaId: z.string().max(256).default(''),
    /** Auth subject of the invoking client; becomes NVCF-SUB. */
    subject: z.string().max(1024).default(''),
    method: z.string().regex(/^[A-Z]{1,16}$/, 'must be an upper-case HTTP method'),
    /** Path and query sent to the container; for pexec it is the function's inference URL. */
    path: z
      .string()
      .startsWith('/')
      .max(8192)
      .regex(/^[^\s\0]*$/, 'must not contain spaces or control characters'),
    headers: HeaderList.default([]),
    /** Set when the body is too large for the frame: the worker streams it from here. */
    bodyUrl: httpUrl.optional(),
    assets: z
      .array(AssetReference)
      .max(64)
      .default([])
      .refine(
        (list) => new Set(list.map((a) => a.assetId.toLowerCase())).size === list.length,
        'must not name the same asset twice',
      ),
    /** Epoch milliseconds when the gateway accepted the request. */
    requestTime: z.number().int().positive(),
    pollSeconds: z.number().int().min(1).max(3600).default(60),
    /** Epoch milliseconds after which the container call is aborted. */
    deadline: z.number().int().positive().optional(),
    maxResponseSizeBytes: z.number().int().positive().default(DEFAULT_MAX_RESPONSE_SIZE_BYTES),
    largeResult: z.object({ uploadUrl: httpUrl, downloadUrl: httpUrl }).optional(),
    /**
     * Subject prefix for every response of this request: `nvcf.rs.<requestId>`, or
     * `nvcf.rs.<gatewayId>.<requestId>` so that each gateway can consume only its own.
     */
    replyTo: z
      .string()
      .regex(
        /^nvcf\.rs\.[A-Za-z0-9_-]{1,128}(\.[A-Za-z0-9_-]{1,128})?$/,
        'must be nvcf.rs.<token> or nvcf.rs.<token>.<token>',
      ),
  })
  .strict();
export type Invocation = z.infer<typeof Invocation>;
export type InvocationInput = z.input<typeof Invocation>;

export type ResponseKind = 'progress' | 'output' | 'head' | 'chunk' | 'final';

/** A finished output file, as announced while the request runs and listed in the final. */
export const OutputFile = z.object({ name: z.string(), size: z.number().int().min(0), sha256: z.string() });
export type OutputFile = z.infer<typeof OutputFile>;
/** A file left out of a large result, and why (still `.partial`, a symlink, not a regular file…). */
export const SkippedFile = z.object({ name: z.string(), reason: z.string() });
export type SkippedFile = z.infer<typeof SkippedFile>;

const common = {
  v: z.literal(PROTOCOL_VERSION),
  requestId: z.string(),
  workerId: z.string(),
  /** JetStream delivery count of the run that produced this message. */
  attempt: z.number().int().min(1),
};
const status = z.number().int().min(100).max(599);

export const ResponseMeta = z.discriminatedUnion('kind', [
  /** A 202 for the caller: body = the container's partialResponse JSON. */
  z.object({
    ...common,
    kind: z.literal('progress'),
    percentComplete: z.number().int().min(0).max(100),
    headers: HeaderList,
  }),
  /** Output files that became final (renamed from `.partial`) while the container works. */
  z.object({ ...common, kind: z.literal('output'), files: z.array(OutputFile) }),
  /** Pass-through: status and headers as soon as the container sends them; chunks follow. */
  z.object({ ...common, kind: z.literal('head'), status, headers: HeaderList }),
  /** One piece of a body, in order from index 0; body = the bytes. */
  z.object({ ...common, kind: z.literal('chunk'), index: z.number().int().min(0) }),
  /**
   * The last message of a request. `chunks` = 0: the frame body is the whole response body.
   * `chunks` = n > 0: the body is the n chunk messages of this attempt sent before it.
   * `streamed`: a head message of this attempt came first and carries status and headers.
   */
  z.object({
    ...common,
    kind: z.literal('final'),
    status,
    headers: HeaderList,
    chunks: z.number().int().min(0),
    streamed: z.boolean().default(false),
    /** Set on a streamed final when the container's body broke off: the caller's copy is cut short. */
    error: z.string().optional(),
    /** On a large result (302): what the zip holds, and what was left out. */
    manifest: z
      .object({
        files: z.array(OutputFile),
        skipped: z.array(SkippedFile),
        /** Totals; the lists above stop early when they would not fit in one message. */
        fileCount: z.number().int().min(0),
        skippedCount: z.number().int().min(0),
      })
      .optional(),
  }),
]);
export type ResponseMeta = z.infer<typeof ResponseMeta>;
export type ResponseMetaInput = z.input<typeof ResponseMeta>;

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

export class FrameError extends Error {
  override name = 'FrameError';
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

export function decodeInvocation(data: Uint8Array): Frame<Invocation> {
  const { json, body } = splitFrame(data);
  const parsed = Invocation.safeParse(json);
  if (!parsed.success) throw new FrameError(`invalid invocation: ${describe(parsed.error)}`, json);
  if (parsed.data.bodyUrl && body.length > 0) {
    throw new FrameError('invalid invocation: a message with bodyUrl must carry no inline body', json);
  }
  return { meta: parsed.data, body };
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
    Invocation.shape.replyTo.safeParse(replyTo).success && typeof requestId === 'string' && requestId.length <= 128;
  return ok ? { replyTo: replyTo as string, requestId: requestId } : undefined;
}

/** The state record each worker keeps in the `nvcf_workers` bucket. */
export const WorkerState = z.object({
  v: z.literal(PROTOCOL_VERSION),
  workerId: z.string(),
  functionId: z.string(),
  functionVersionId: z.string(),
  functionName: z.string(),
  ncaId: z.string(),
  /** The container path pexec calls go to (the worker's INFERENCE_URL); the gateway puts it in `path`. */
  inferenceUrl: z.string().startsWith('/').optional(),
  state: z.enum(['starting', 'ready', 'unhealthy', 'draining', 'error', 'stopped']),
  message: z.string().optional(),
  capacity: z.number().int(),
  inFlight: z.number().int(),
  updatedAt: z.number().int(),
});
export type WorkerState = z.infer<typeof WorkerState>;

export type FunctionStatus = 'ACTIVE' | 'DEPLOYING' | 'ERROR' | 'INACTIVE';

/** Function (version) status as NVCF reports it, from the fresh state records of its workers. */
export function functionStatus(records: readonly WorkerState[], now: number): FunctionStatus {
  // A failed worker writes `error` once and exits; its record counts as long as the bucket keeps
  // it. A watcher hears of no TTL expiry, so the age is checked here rather than trusted to it.
  const fresh = records.filter(
    (r) =>
      r.state !== 'stopped' && now - r.updatedAt <= (r.state === 'error' ? WORKER_RECORD_TTL_MS : HEARTBEAT_STALE_MS),
  );
  if (fresh.length === 0) return 'INACTIVE';
  if (fresh.some((r) => r.state === 'ready')) return 'ACTIVE';
  if (fresh.every((r) => r.state === 'error')) return 'ERROR';
  return 'DEPLOYING';
}
