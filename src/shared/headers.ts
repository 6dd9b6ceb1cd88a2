import type { HeaderList } from './protocol.js';

/**
 * Headers NVCF's worker owns on the request to the container. A client value for any of them is
 * dropped, so a caller cannot spoof its request id, its organisation or the directories the
 * container writes to. NVCF-INVOCATION-REGION is not here: the gateway owns that one.
 */
export const WORKER_OWNED = [
  'NVCF-REQID',
  'NVCF-SUB',
  'NVCF-NCAID',
  'NVCF-FUNCTION-NAME',
  'NVCF-FUNCTION-ID',
  'NVCF-FUNCTION-VERSION-ID',
  'NVCF-ASSET-DIR',
  'NVCF-LARGE-OUTPUT-DIR',
  'NVCF-MAX-RESPONSE-SIZE-BYTES',
  'NVCF-NSPECTID',
  'NVCF-BACKEND',
  'NVCF-INSTANCETYPE',
  'NVCF-REGION',
  'NVCF-ENV',
  'NVCF-FUNCTION-ASSET-IDS',
  'NVCF-POLL-SECONDS',
] as const;

const workerOwned = new Set(WORKER_OWNED.map((n) => n.toLowerCase()));

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'proxy-connection',
]);
/** Recomputed by whoever writes the next hop; `expect` would stall a proxied body. */
const FRAMING = new Set(['host', 'content-length', 'expect']);

/** Names listed in Connection are hop-by-hop for this message too (RFC 9110 §7.6.1). */
function connectionListed(headers: HeaderList): Set<string> {
  const listed = new Set<string>();
  for (const [name, value] of headers) {
    if (name.toLowerCase() !== 'connection') continue;
    for (const token of value.split(',')) listed.add(token.trim().toLowerCase());
  }
  return listed;
}

function isHopByHop(lower: string, listed: Set<string>): boolean {
  return HOP_BY_HOP.has(lower) || lower.startsWith('proxy-') || listed.has(lower);
}

export interface WorkerHeaderValues {
  requestId: string;
  subject: string;
  ncaId: string;
  functionName: string;
  functionId: string;
  functionVersionId: string;
  assetDir: string;
  largeOutputDir: string;
  maxResponseSizeBytes: number;
  nspectId: string;
  backend: string;
  instanceType: string;
  region: string;
  environment: string;
  assetIds: string[];
  pollSecondsLeft: number;
}

/**
 * The request headers the container sees: the client's, minus credentials, hop-by-hop and
 * worker-owned names, plus the worker-owned set written upper-case as NVCF's worker does.
 */
export function containerRequestHeaders(
  client: HeaderList,
  owned: WorkerHeaderValues,
  compatibility: boolean,
): HeaderList {
  const listed = connectionListed(client);
  const out: HeaderList = [
    ['NVCF-REQID', owned.requestId],
    ['NVCF-SUB', owned.subject],
    ['NVCF-NCAID', owned.ncaId],
    ['NVCF-FUNCTION-NAME', owned.functionName],
    ['NVCF-FUNCTION-ID', owned.functionId],
    ['NVCF-FUNCTION-VERSION-ID', owned.functionVersionId],
    ['NVCF-ASSET-DIR', owned.assetDir],
    ['NVCF-LARGE-OUTPUT-DIR', owned.largeOutputDir],
    ['NVCF-MAX-RESPONSE-SIZE-BYTES', String(owned.maxResponseSizeBytes)],
    ['NVCF-NSPECTID', owned.nspectId],
    ['NVCF-BACKEND', owned.backend],
    ['NVCF-INSTANCETYPE', owned.instanceType],
    ['NVCF-REGION', owned.region],
    ['NVCF-ENV', owned.environment],
    ['NVCF-POLL-SECONDS', String(owned.pollSecondsLeft)],
  ];
  if (owned.assetIds.length > 0) out.push(['NVCF-FUNCTION-ASSET-IDS', owned.assetIds.join(',')]);
  let hasContentType = false;
  for (const [name, value] of client) {
    const lower = name.toLowerCase();
    if (lower === 'authorization' || workerOwned.has(lower) || FRAMING.has(lower) || isHopByHop(lower, listed))
      continue;
    if (lower === 'content-type') hasContentType = true;
    out.push([name, value]);
  }
  if (compatibility && !hasContentType) out.push(['Content-Type', 'application/json']);
  return out;
}

/**
 * What a gateway queues of a client's headers. As NVCF's invocation service does, it strips the
 * caller's credentials and hop-by-hop headers, and it owns NVCF-INVOCATION-REGION, so a client's
 * value for that is dropped too.
 */
export function queueableClientHeaders(client: HeaderList): HeaderList {
  const listed = connectionListed(client);
  return client.filter(([name]) => {
    const lower = name.toLowerCase();
    return (
      lower !== 'authorization' &&
      lower !== 'nvcf-invocation-region' &&
      !FRAMING.has(lower) &&
      !isHopByHop(lower, listed)
    );
  });
}

/** Response headers worth carrying back: framing is redone by the gateway's own HTTP server. */
export function relayableResponseHeaders(raw: Record<string, string | string[] | undefined>): HeaderList {
  const pairs: HeaderList = [];
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) pairs.push([name, v]);
  }
  const listed = connectionListed(pairs);
  return pairs.filter(([name]) => {
    const lower = name.toLowerCase();
    return !FRAMING.has(lower) && !isHopByHop(lower, listed);
  });
}

function headerValue(headers: HeaderList, name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}

function mediaType(value: string | undefined): string {
  return (value ?? '').split(';')[0]!.trim().toLowerCase();
}

export function acceptsEventStream(headers: HeaderList): boolean {
  const accept = headerValue(headers, 'accept');
  return accept !== undefined && accept.split(',').some((part) => mediaType(part) === 'text/event-stream');
}

export function isEventStream(contentType: string | undefined): boolean {
  return mediaType(contentType) === 'text/event-stream';
}

/**
 * NVCF switches to pass-through (no 202s, no problem mapping, no zip) for SSE requests, for the
 * opt-out header, and for the worker-wide switch.
 */
export function wantsPassThrough(client: HeaderList, passThroughAlways: boolean): boolean {
  if (passThroughAlways || acceptsEventStream(client)) return true;
  return headerValue(client, 'nvcf-feature-disable-worker-compatibility')?.trim().toLowerCase() === 'true';
}
