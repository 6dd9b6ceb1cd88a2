import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export type Outcome =
  'ok' | 'container_error' | 'failed' | 'expired' | 'cancelled' | 'malformed' | 'duplicate' | 'returned';

/**
 * Seconds, from a millisecond hand-off to an hour-long GPU job (NVCF's limit per request). The
 * steps between 1 s and 2 min (2, 5, 10, 20, 30, 60) are where model runs, downloads and
 * uploads of real jobs spread out, so they are drawn finely there.
 */
const SECONDS_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600];

/** Bytes, from a small JSON input to multi-gigabyte weights and results (ASSET_MAX_BYTES is 5 GiB). */
const BYTES_BUCKETS = [1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 5e9, 1e10, 5e10];

/** Every metric the worker exports, named in one place, on a registry of its own. */
export function createWorkerMetrics(registry = new Registry()) {
  // Process and Node.js metrics (CPU, memory, event-loop lag, GC, handles) on the same endpoint.
  collectDefaultMetrics({ register: registry });
  const histogram = (name: string, help: string, buckets = SECONDS_BUCKETS) =>
    new Histogram({ name, help, buckets, registers: [registry] });
  return {
    registry,
    requests: new Counter({
      name: 'nvcf_worker_requests_total',
      help: 'Requests finished, by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    queueWait: histogram(
      'nvcf_worker_queue_wait_seconds',
      'From the gateway accepting a request to this worker starting it',
    ),
    inference: histogram('nvcf_worker_inference_seconds', 'From calling the container to its full response'),
    publish: histogram('nvcf_worker_publish_seconds', 'Publishing the final response until JetStream acknowledged it'),
    phases: {
      asset_download: {
        seconds: histogram(
          'nvcf_worker_asset_download_seconds',
          "Downloading all of a request's input assets, for requests that have any",
        ),
        bytes: histogram('nvcf_worker_asset_download_bytes', "Bytes of a request's input assets", BYTES_BUCKETS),
      },
      result_upload: {
        seconds: histogram(
          'nvcf_worker_result_upload_seconds',
          'From opening the upload of a large result (its first output file) to the store accepting it',
        ),
        bytes: histogram('nvcf_worker_result_upload_bytes', 'Bytes of an uploaded large-result zip', BYTES_BUCKETS),
      },
    },
    inFlight: new Gauge({ name: 'nvcf_worker_in_flight', help: 'Requests being worked on now', registers: [registry] }),
    capacity: new Gauge({ name: 'nvcf_worker_capacity', help: 'MAX_REQUEST_CONCURRENCY', registers: [registry] }),
    redeliveries: new Counter({
      name: 'nvcf_worker_redeliveries_total',
      help: 'Messages received with a delivery count above 1',
      registers: [registry],
    }),
    naks: new Counter({
      name: 'nvcf_worker_naks_total',
      help: 'Messages handed back to the queue, by reason',
      labelNames: ['reason'],
      registers: [registry],
    }),
    cancellations: new Counter({
      name: 'nvcf_worker_cancellations_total',
      help: 'Requests aborted by a cancel message',
      registers: [registry],
    }),
    containerHealthy: new Gauge({
      name: 'nvcf_worker_container_healthy',
      help: '1 when the last health probe of the container passed',
      registers: [registry],
    }),
  };
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;

export type Phase = keyof WorkerMetrics['phases'];

/**
 * Records a completed phase of a request: seconds since `startedAt` (performance.now()) and bytes
 * moved. The request's worker's metrics are handed down to where its phases run, not found
 * through an AsyncLocalStorage: one in use makes Node run a hook on every promise of the process
 * (Node 20), which cost the worker more than the phases it was there to time.
 */
export function observePhase(metrics: WorkerMetrics | undefined, phase: Phase, startedAt: number, bytes: number): void {
  const histograms = metrics?.phases[phase];
  histograms?.seconds.observe((performance.now() - startedAt) / 1000);
  histograms?.bytes.observe(bytes);
}
