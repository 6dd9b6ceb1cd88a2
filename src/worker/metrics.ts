import { Counter, Gauge, Histogram, Registry } from 'prom-client';

export type Outcome =
  'ok' | 'container_error' | 'failed' | 'expired' | 'cancelled' | 'malformed' | 'duplicate' | 'returned';

/** Every metric the worker exports, named in one place, on a registry of its own. */
export function createWorkerMetrics(registry = new Registry()) {
  const seconds = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600];
  return {
    registry,
    requests: new Counter({
      name: 'nvcf_worker_requests_total',
      help: 'Requests finished, by outcome',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    queueWait: new Histogram({
      name: 'nvcf_worker_queue_wait_seconds',
      help: 'From the gateway accepting a request to this worker starting it',
      buckets: seconds,
      registers: [registry],
    }),
    inference: new Histogram({
      name: 'nvcf_worker_inference_seconds',
      help: 'From calling the container to its full response',
      buckets: seconds,
      registers: [registry],
    }),
    publish: new Histogram({
      name: 'nvcf_worker_publish_seconds',
      help: 'Publishing the final response until JetStream acknowledged it',
      buckets: seconds,
      registers: [registry],
    }),
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
