import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { NatsCaller } from '../lib/nats-load.js';
import { RssSampler, rssMiB } from '../lib/processes.js';
import type { Rig } from '../lib/setup.js';
import type { UploadSink } from '../lib/sink.js';
import { nowMs } from '../lib/stats.js';

export interface LargeRow {
  case: string;
  fileBytes: number;
  files: number;
  bodyBytes: number;
  /** Invocation published → 302 final at the subscriber. */
  secondsTo302: number;
  /** Last output file final in the container → 302 final. */
  secondsFromFinalFileTo302?: number;
  zipBytes: number;
  /** Zip bytes over the time from the first to the last byte at the storage side. */
  uploadMBps: number;
  rssBeforeMiB: number;
  rssPeakMiB: number;
  rssGrowthMiB: number;
}

const MiB = 1024 * 1024;

async function one(
  rig: Rig,
  caller: NatsCaller,
  sink: UploadSink,
  name: string,
  fileBytes: number,
  files: number,
  bodyBytes: number,
): Promise<LargeRow> {
  const requestId = crypto.randomUUID();
  const headers: [string, string][] = [
    ['Content-Type', 'application/json'],
    ['x-bench-mode', 'large'],
    ['x-bench-file-bytes', String(fileBytes)],
    ['x-bench-files', String(files)],
    ['x-bench-body-bytes', String(bodyBytes)],
  ];
  const largeResult = { uploadUrl: sink.url(requestId), downloadUrl: `http://127.0.0.1:9/results/${requestId}` };
  // Let the heap settle first, so the growth measured is this request's.
  await sleep(1_000);
  const rssBeforeMiB = rssMiB(rig.worker.pid);
  const sampler = new RssSampler(rig.worker.pid, 20);
  const started = nowMs();
  const final = await caller.invoke(rig.workerFn.functionId, rig.workerFn.functionVersionId, {
    headers,
    largeResult,
    requestId,
  });
  const rssPeakMiB = sampler.stop();
  if (final.meta.kind !== 'final' || final.meta.status !== 302)
    throw new Error(`${name}: the worker answered ${JSON.stringify(final.meta)}`);
  const upload = await sink.upload(requestId);
  const marks = (await (await request(`${rig.containerOrigin}/marks?id=${requestId}`)).body.json()) as Record<
    string,
    number
  >;
  const lastFinal = Math.max(...Object.values(marks));
  return {
    case: name,
    fileBytes,
    files,
    bodyBytes,
    secondsTo302: (final.at - started) / 1000,
    ...(Number.isFinite(lastFinal) ? { secondsFromFinalFileTo302: (final.at - lastFinal) / 1000 } : {}),
    zipBytes: upload.bytes,
    uploadMBps: upload.bytes / MiB / Math.max(1e-3, (upload.lastByteAt - upload.firstByteAt) / 1000),
    rssBeforeMiB,
    rssPeakMiB,
    rssGrowthMiB: rssPeakMiB - rssBeforeMiB,
  };
}

/**
 * Scenario 3: large results. A 12 MiB body alone; one big output file (1 GiB; 256 MiB with
 * --quick) with the 12 MiB body; 1,000 small files; 100,000 tiny files (10,000 with --quick).
 * Each ends in a zip PUT to the sink and a 302.
 */
export async function largeOutputs(rig: Rig, sink: UploadSink, quick: boolean): Promise<LargeRow[]> {
  const caller = await NatsCaller.connect(rig.nats.url);
  try {
    // The big file first: its RSS growth is the figure that matters, measured from a worker
    // that has not yet held a large body.
    const big = await one(
      rig,
      caller,
      sink,
      quick ? '256 MiB file + 12 MiB body' : '1 GiB file + 12 MiB body',
      quick ? 256 * MiB : 1024 * MiB,
      0,
      12 * MiB,
    );
    const body = await one(rig, caller, sink, '12 MiB body', 0, 0, 12 * MiB);
    const small = await one(rig, caller, sink, '1,000 small files', 0, 1000, 1024);
    const many = quick ? 10_000 : 100_000;
    return [body, big, small, await one(rig, caller, sink, `${many.toLocaleString('en')} tiny files`, 0, many, 1024)];
  } finally {
    await caller.close();
  }
}
