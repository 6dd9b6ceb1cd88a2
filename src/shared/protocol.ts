import { z } from 'zod';

/**
 * nvcf-sidecar NATS protocol, version 1: every subject, stream, bucket and limit, and the schema
 * of every message that crosses NATS, in one module that the worker, the gateway and the tests
 * all import. docs/protocol.md is the prose version of this file; change both together. How a
 * message is laid out in bytes (a frame) is frame-codec.ts.
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
  /** Reply prefix of a request; with a gateway id, under that gateway's own prefix. */
  replyTo: (requestId: string, gatewayId?: string) =>
    gatewayId ? `${subjects.gatewayReplies(gatewayId)}${requestId}` : `nvcf.rs.${requestId}`,
  /** Every reply subject of one gateway starts with this (`<prefix>>` hears them all). */
  gatewayReplies: (gatewayId: string) => `nvcf.rs.${gatewayId}.`,
  responsesOf: (replyTo: string) => `${replyTo}.>`,
  /** Core NATS (not stored): the payload is the request id to abort. */
  cancel: (functionVersionId: string) => `nvcf.cancel.${functionVersionId}`,
  /**
   * Core NATS (not stored): how many body bytes of a streamed response the gateway has written
   * to its client (decimal). The worker keeps at most STREAM_AHEAD_BYTES published beyond it.
   */
  streamRead: (requestId: string) => `nvcf.read.${requestId}`,
} as const;

export const streams = {
  work: (functionVersionId: string) => `NVCF_RQ_${functionVersionId}`,
  /** Durable pull consumer shared by every worker of the version: how the fleet scales out. */
  workConsumer: 'workers',
  results: 'NVCF_RS',
  resultsSubjects: ['nvcf.rs.>'],
} as const;

/**
 * JetStream message ids (`Nats-Msg-Id`): a publish repeated within the stream's duplicate window
 * under the same id is dropped, so a publish retried after a lost acknowledgement stores nothing
 * twice.
 */
export const messageIds = {
  /** The invocation: its request id, so a request is queued once however often it is sent. */
  work: (requestId: string) => requestId,
  /**
   * The final of a request, the same whoever writes it (a worker, or a gateway answering for a
   * request no worker took): the first one stored is the request's only final.
   */
  final: (requestId: string) => `${requestId}.final`,
  /** A head or a chunk of one attempt (`part` is `head` or `c<index>`). */
  ofAttempt: (requestId: string, attempt: number, part: string) => `${requestId}.${attempt}.${part}`,
} as const;

/** Key-value and object buckets (each is a stream named `KV_<bucket>` or `OBJ_<bucket>`). */
export const buckets = {
  /** Worker state records, key `<functionVersionId>.<workerId>`; TTL WORKER_RECORD_TTL_MS. */
  workers: 'nvcf_workers',
  /** Gateway: every function version ever seen (no TTL), so a stopped function lists as INACTIVE. */
  functions: 'nvcf_functions',
  /** Gateway: its own small state (the signing secret, shared by every gateway on the server). */
  gateway: 'nvcf_gateway',
  /** Gateway: one record per request, for polls on any gateway; TTL RESULT_RETENTION. */
  requests: 'nvcf_requests',
  /** Gateway: uploaded asset records. */
  assetRecords: 'nvcf_asset_records',
  /** Gateway object stores: asset bytes, large results, request bodies too large for a frame. */
  objects: (kind: 'assets' | 'results' | 'bodies') => `nvcf_${kind}`,
  /** Harness lifecycle API: registered function versions, key `<functionVersionId>`. */
  functionVersions: 'nvcf_function_versions',
  /** Harness lifecycle API: deployments and the gateway whose controller runs them, key `<functionVersionId>`. */
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
/**
 * Body bytes of a streamed response a worker may publish beyond what the gateway reports its
 * client has been sent; past it the worker stops reading the container (whose writes then block),
 * so a slow client holds this much in NVCF_RS, not the whole stream.
 */
export const STREAM_AHEAD_BYTES = 8 * 1024 * 1024;
/** How often a gateway writing a stream repeats where its client is, so a lost report cannot stall it. */
export const STREAM_READ_REPORT_MS = 1_000;
/** Limits of the work queue stream and its shared consumer (created by whichever side comes first). */
export const workQueueLimits = {
  /** Queue depth when the gateway does not set GATEWAY_QUEUE_MAX. */
  defaultMaxMessages: 100_000,
  /** Each request has a subject of its own: one message on it is the request, queued once. */
  messagesPerSubject: 1,
  /**
   * A message nobody can finish (max_deliver spent) must not hold a queue slot for ever; no
   * request outlives this (poll windows end within 1 h, deadlines default to 1 h).
   */
  maxAgeMs: 2 * 3_600_000,
  /** Publishes of the same request id within this window are one message (a retried publish). */
  duplicateWindowMs: 120_000,
  /** Pull requests waiting at once: several workers fetch together, each for its free slots. */
  maxWaiting: 4096,
} as const;

/** The results stream drops duplicate publishes (same message id) within this window at most. */
export const RESULTS_DUPLICATE_WINDOW_MS = 120_000;
/** Stream replicas when NATS_STREAM_REPLICAS is not set: a single server holds one copy. */
export const DEFAULT_STREAM_REPLICAS = 1;

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
     * `nvcf.rs.<gatewayId>.<requestId>` so that each gateway can consume only its own. It must
     * end in the request id (checked on decode): a frame cannot answer another request.
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
