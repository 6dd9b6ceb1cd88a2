import { lstat, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NatsConnection } from 'nats';
import { streams } from '../../src/shared/protocol.js';
import { decodeResponse } from '../../src/shared/frame-codec.js';
import { readZip } from '../support/zip.js';
import type { FrameCase } from './fuzz-cases.js';
import type { FuzzReport } from './fuzz.js';

/**
 * What the frame fuzzer reads back to judge a run: every response published for its cases, the
 * request directories left behind, and any zip that carries the canary a case must never read.
 */

interface Final {
  status: number;
  body: Buffer;
}

export type Seen = Final & { fileCount?: number };

/** Published once the run is over, so the reader below wakes to see it has read everything. */
const END_MARK = 'nvcf.rs.fuzz.end';

/** Reads every response published for fuzz cases; any body carrying the canary marker is an escape. */
export function collectFinals(nc: NatsConnection, marker: string, report: FuzzReport) {
  const byReplyTo = new Map<string, Seen>();
  const needle = Buffer.from(marker);
  let stopped = false;
  const done = (async () => {
    const consumer = await nc.jetstream().consumers.get(streams.results, { filterSubjects: 'nvcf.rs.fuzz.>' });
    const messages = await consumer.consume();
    for await (const msg of messages) {
      const data = Buffer.from(msg.data);
      if (data.includes(needle)) report.escapes.push(`response ${msg.subject} carries the canary`);
      if (msg.subject === END_MARK) {
        if (stopped && msg.info.pending === 0) break;
        continue;
      }
      const replyTo = msg.subject.replace(/\.(final|progress|output|head|chunk\.\d+\.\d+)$/, '');
      try {
        decodeResponse(data);
      } catch (err) {
        // What the gateway cannot decode leaves its caller waiting: the worker must never publish it.
        report.wrongAnswers.push(
          `${replyTo}: a ${msg.subject.slice(replyTo.length + 1)} that does not decode (${(err as Error).message.slice(0, 120)})`,
        );
      }
      if (msg.subject.endsWith('.final')) {
        const newline = data.indexOf(0x0a);
        const meta = JSON.parse(data.subarray(0, newline).toString()) as {
          status: number;
          manifest?: { fileCount: number };
        };
        if (byReplyTo.has(replyTo)) report.wrongAnswers.push(`${replyTo}: a second final`);
        byReplyTo.set(replyTo, {
          status: meta.status,
          body: data.subarray(newline + 1),
          ...(meta.manifest ? { fileCount: meta.manifest.fileCount } : {}),
        });
      }
      if (stopped && msg.info.pending === 0) break;
    }
  })();
  return {
    byReplyTo,
    async stop() {
      stopped = true;
      nc.publish(END_MARK, new Uint8Array(0));
      await Promise.race([done, sleep(2_000)]);
    },
  };
}

export async function untilAnswered(
  finals: Map<string, Seen>,
  cases: FrameCase[],
  timeoutMs: number,
  dead: () => boolean,
): Promise<void> {
  const giveUp = Date.now() + timeoutMs;
  while (Date.now() < giveUp && !dead() && cases.some((c) => !finals.has(c.replyTo!))) await sleep(50);
}

export function judge(cases: FrameCase[], finals: Map<string, Seen>, report: FuzzReport): void {
  for (const c of cases) {
    const final = finals.get(c.replyTo!);
    if (!final) {
      report.unanswered.push(`case ${c.id} (${c.label}) at ${c.replyTo}`);
      continue;
    }
    report.answered++;
    if (c.mustCarry && !final.body.includes(c.mustCarry))
      report.wrongAnswers.push(`case ${c.id} (${c.label}): its final (${final.status}) is not its own answer`);
    if (c.expect === 'bad-request' && final.status !== 400)
      report.wrongAnswers.push(`case ${c.id} (${c.label}): expected 400, got ${final.status}`);
    if (final.status >= 400) {
      let detail: unknown;
      try {
        detail = (JSON.parse(final.body.toString()) as { detail?: unknown }).detail;
      } catch {
        // judged below
      }
      if (typeof detail !== 'string' || detail.length === 0)
        report.wrongAnswers.push(`case ${c.id} (${c.label}): ${final.status} without a problem detail`);
    }
  }
}

/**
 * Request directories must all be gone once their requests ended. The running worker's spare
 * output directories (named `.nvcf-spare-…`) may stay, as long as each is an empty directory.
 */
export async function leftovers(env: Record<string, string>): Promise<string[]> {
  const found: string[] = [];
  for (const dir of [env.BASE_ASSET_DIR!, env.BASE_RESPONSE_DIR!]) {
    let names: string[] = [];
    // Removal runs after the final is published; 100,000 files take a while to remove.
    for (let i = 0; i < 600; i++) {
      names = await readdir(dir).catch(() => [] as string[]);
      names = (
        await Promise.all(names.map(async (name) => ((await isEmptySpare(join(dir, name))) ? [] : [name])))
      ).flat();
      if (names.length === 0) break;
      await sleep(100);
    }
    if (names.length > 0)
      found.push(
        `${names.length} entries left in ${dir.endsWith('response') ? 'BASE_RESPONSE_DIR' : 'BASE_ASSET_DIR'}: ${names.slice(0, 3).join(', ')}`,
      );
  }
  return found;
}

export async function zipsWithCanary(dir: string, marker: string): Promise<string[]> {
  const found: string[] = [];
  for (const name of await readdir(dir)) {
    const entries = await readZip(join(dir, name)).catch(() => new Map<string, Buffer>());
    for (const [entry, bytes] of entries)
      if (bytes.includes(marker)) found.push(`zip ${name} entry ${JSON.stringify(entry)} carries the canary`);
  }
  return found;
}

async function isEmptySpare(path: string): Promise<boolean> {
  if (!basename(path).startsWith('.nvcf-spare-')) return false;
  const info = await lstat(path).catch(() => undefined);
  return info !== undefined && info.isDirectory() && (await readdir(path).catch(() => ['?'])).length === 0;
}
