import { join } from 'node:path';
import { connect } from 'nats';
import { NatsServer } from '../../src/dev/nats-server.js';
import { subjects } from '../../src/shared/protocol.js';
import { workerEnv } from '../support/env.js';
import { TestStorage } from '../support/storage.js';
import { waitForStatus } from '../support/gateway.js';
import { GatewayProcess, WorkerSlot } from './cluster.js';
import { generateCase, hijackCases, manyFilesCase, type FrameCase } from './fuzz-cases.js';
import { collectFinals, judge, leftovers, untilAnswered, zipsWithCanary } from './fuzz-findings.js';
import { runGatewayFuzz, type GatewayFuzzReport } from './fuzz-gateway.js';
import { API_KEYS_ENV, API_KEYS_VALUE, crossClientCases } from './fuzz-keys.js';
import { Canaries, startFuzzContainer } from './fuzz-container.js';
import { Random } from './random.js';

/**
 * Hostile input against one worker process: seeded cases published straight to its work queue,
 * checked for crashes, unanswered addressable cases, spoofed headers, reads or writes outside the
 * request directories, and memory growth.
 */

export interface FuzzOptions {
  seed: number;
  cases: number;
  /** Tiny output files written by the one many-files case. */
  manyFiles: number;
  /** Hostile calls to the gateway's HTTP API, after the frame cases. */
  gatewayCases: number;
  batch?: number;
}

export interface FuzzReport {
  seed: number;
  cases: number;
  refusedByNats: number;
  addressable: number;
  answered: number;
  crashes: number;
  crashDetails: string[];
  unanswered: string[];
  wrongAnswers: string[];
  spoofed: number;
  escapes: string[];
  /** Worker memory after the first batch and after the last (RSS), and its peak (high-water mark) over them. */
  rssStartBytes: number;
  rssEndBytes: number;
  rssMaxBytes: number;
  /** The many-files case, run last and alone: its answer, the worker's peak memory by its end, and its memory after. */
  manyFiles: { count: number; status?: number; fileCount?: number; rssPeakBytes?: number; rssAfterBytes?: number };
  gateway?: GatewayFuzzReport;
  elapsedMs: number;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const started = Date.now();
  const rng = new Random(options.seed);
  const nats = await NatsServer.start();
  const storage = await TestStorage.start();
  const env = await workerEnv(nats.url, 1, {
    LOG_LEVEL: 'info',
    MAX_REQUEST_CONCURRENCY: '8',
    INFERENCE_URL: '/infer',
  });
  const root = join(env.BASE_RESPONSE_DIR!, '..');
  const canaries = new Canaries(join(root, 'canary'), options.seed);
  await canaries.plant();
  const { container, findings } = await startFuzzContainer(canaries);
  env.INFERENCE_PORT = String(container.port);
  const worker = new WorkerSlot(env);
  const nc = await connect({ servers: nats.url });
  const report: FuzzReport = {
    seed: options.seed,
    cases: 0,
    refusedByNats: 0,
    addressable: 0,
    answered: 0,
    crashes: 0,
    crashDetails: [],
    unanswered: [],
    wrongAnswers: [],
    spoofed: 0,
    escapes: [],
    rssStartBytes: 0,
    rssEndBytes: 0,
    rssMaxBytes: 0,
    manyFiles: { count: options.manyFiles },
    elapsedMs: 0,
  };
  try {
    await worker.running();
    const finals = collectFinals(nc, canaries.marker, report);
    const target = {
      functionId: env.FUNCTION_ID!,
      versionId: env.FUNCTION_VERSION_ID!,
      storageUrl: (key: string) => storage.url(key),
    };
    const js = nc.jetstream();
    const batch = options.batch ?? 250;
    const checkAlive = () => {
      if (!worker.alive()) {
        report.crashes++;
        const fatal = worker.process.lines.find((l) => l.msg === 'uncaught error; exiting');
        report.crashDetails.push(JSON.stringify(fatal?.err ?? worker.process.stderr().slice(-500)).slice(0, 600));
        worker.restart();
        return worker.running();
      }
    };
    const runBatch = async (cases: FrameCase[], waitMs: number) => {
      for (const c of cases) {
        report.cases++;
        try {
          await js.publish(subjects.work(target.versionId, rng.uuid()), c.data);
        } catch {
          report.refusedByNats++;
          c.expect = 'none';
        }
      }
      const waitFor = cases.filter((c) => c.expect !== 'none' && c.replyTo);
      report.addressable += waitFor.length;
      await untilAnswered(finals.byReplyTo, waitFor, waitMs, () => !worker.alive());
      judge(waitFor, finals.byReplyTo, report);
      await checkAlive();
      const memory = worker.alive() ? await worker.memory() : { rss: 0, peak: 0 };
      if (report.rssStartBytes === 0) report.rssStartBytes = memory.rss;
      report.rssMaxBytes = Math.max(report.rssMaxBytes, memory.peak);
      report.rssEndBytes = memory.rss;
    };
    for (let done = 0; done < options.cases;) {
      const cases: FrameCase[] = [];
      for (let i = 0; i < batch && done < options.cases; i++, done++) cases.push(generateCase(done, rng, target));
      // Every batch also has one request whose reply subject another frame borrows.
      cases.push(...hijackCases(done, rng, target));
      await runBatch(cases, Number(process.env.FUZZ_BATCH_WAIT_MS ?? 60_000));
    }
    if (options.gatewayCases > 0)
      report.gateway = await fuzzThroughGateway(nats.url, target, canaries.marker, rng, options.gatewayCases);
    // Alone, so the memory it takes is told apart from the run's.
    if (options.manyFiles > 0) {
      const regular = { rssEndBytes: report.rssEndBytes, rssMaxBytes: report.rssMaxBytes };
      await runBatch([manyFilesCase(options.cases, rng, target, options.manyFiles)], 300_000);
      Object.assign(report.manyFiles, { rssPeakBytes: report.rssMaxBytes, rssAfterBytes: report.rssEndBytes });
      Object.assign(report, regular);
    }
    const many =
      options.manyFiles > 0
        ? [...finals.byReplyTo.values()].find((f) => f.fileCount !== undefined && f.fileCount >= options.manyFiles)
        : undefined;
    if (many) Object.assign(report.manyFiles, { status: many.status, fileCount: many.fileCount });
    report.spoofed = findings.spoofed.length + findings.wrongRequestId;
    report.escapes.push(...(await canaries.changes()));
    report.escapes.push(...(await leftovers(env)));
    report.escapes.push(...(await zipsWithCanary(storage.dir, canaries.marker)));
    await finals.stop();
  } finally {
    report.elapsedMs = Date.now() - started;
    await worker.kill('SIGKILL');
    await nc.close();
    await container.close();
    await storage.close();
    await nats.dispose();
  }
  return report;
}

/** The gateway in front of the fuzzed worker, with one uploaded and one empty asset to refer to. */
async function fuzzThroughGateway(
  natsUrl: string,
  target: { functionId: string; versionId: string },
  marker: string,
  rng: Random,
  cases: number,
): Promise<GatewayFuzzReport> {
  const gateway = await GatewayProcess.start(natsUrl);
  try {
    await waitForStatus(gateway.url, target.functionId, target.versionId, 'ACTIVE', 30_000);
    const createAsset = async () => {
      const res = await fetch(`${gateway.url}/v2/nvcf/assets`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ contentType: 'text/plain' }),
      });
      return (await res.json()) as { assetId: string; uploadUrl: string };
    };
    const uploaded = await createAsset();
    const put = await fetch(uploaded.uploadUrl, {
      method: 'PUT',
      headers: { 'content-type': 'text/plain' },
      body: 'asset bytes',
    });
    if (!put.ok) throw new Error(`the fuzz asset could not be uploaded: ${put.status}`);
    const empty = await createAsset();
    const alive = () => gateway.process.child.exitCode === null && gateway.process.child.signalCode === null;
    const report = await runGatewayFuzz(
      { url: gateway.url, ...target, uploadedAsset: uploaded.assetId, emptyAsset: empty.assetId, marker },
      rng,
      cases,
      16,
      alive,
    );
    // A second gateway on the same NATS, with one API key per client.
    const keyed = await GatewayProcess.start(natsUrl, {
      GATEWAY_ID: 'gw-chaos-keyed',
      [API_KEYS_ENV]: API_KEYS_VALUE,
    });
    try {
      report.crossClient = await crossClientCases(
        { url: keyed.url, ...target },
        rng,
        Math.max(2, Math.ceil(cases / 100)),
      );
    } finally {
      await keyed.stop();
    }
    return report;
  } finally {
    await gateway.stop();
  }
}
