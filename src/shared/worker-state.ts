import { z } from 'zod';
import { HEARTBEAT_STALE_MS, PROTOCOL_VERSION, WORKER_RECORD_TTL_MS } from './protocol.js';

/**
 * The state record each worker keeps in the `nvcf_workers` bucket: exactly these fields (strict
 * on write and on read), so nothing else of a worker's configuration, such as its NATS
 * credentials, can ride along into a bucket that every gateway reads.
 */
export const WorkerState = z.strictObject({
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
