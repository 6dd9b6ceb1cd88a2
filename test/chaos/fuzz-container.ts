import { execFileSync } from 'node:child_process';
import { link, mkdir, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WORKER_OWNED } from '../../src/shared/headers.js';
import { TestContainer } from '../support/container.js';
import { SPOOF, type ContainerAct } from './fuzz-acts.js';

/**
 * The fuzz run's inference container: it does to its output directory what the request body
 * says (hostile names, symlinks out, FIFOs, bad progress files), and checks on every request
 * that no client value reached it in a worker-owned NVCF-* header.
 */

const CANARY_MTIME = new Date('2001-02-03T04:05:06Z');

/** Files outside every request directory, with known content and mtime, that must stay untouched and unread. */
export class Canaries {
  readonly marker: string;
  constructor(
    readonly dir: string,
    seed: number,
  ) {
    this.marker = `CANARY-${seed}-DO-NOT-SHIP`;
  }

  get files(): Record<string, string> {
    return {
      'secret.bin': this.marker,
      // A well-formed progress file: followed through a link, it would be published as progress.
      progress: JSON.stringify({ progress: 42, partialResponse: { secret: this.marker } }),
    };
  }

  async plant(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    for (const [name, content] of Object.entries(this.files)) {
      await writeFile(join(this.dir, name), content);
      await utimes(join(this.dir, name), CANARY_MTIME, CANARY_MTIME);
    }
  }

  /** What changed in the canary directory: any difference is an escape. */
  async changes(): Promise<string[]> {
    const problems: string[] = [];
    const names = (await readdir(this.dir)).sort();
    const expected = Object.keys(this.files).sort();
    if (names.join('/') !== expected.join('/')) problems.push(`canary directory holds ${JSON.stringify(names)}`);
    for (const [name, content] of Object.entries(this.files)) {
      const path = join(this.dir, name);
      const [text, info] = await Promise.all([
        readFile(path, 'utf8').catch(() => '<missing>'),
        stat(path).catch(() => undefined),
      ]);
      if (text !== content) problems.push(`${name} content changed`);
      if (info?.mtime.getTime() !== CANARY_MTIME.getTime()) problems.push(`${name} mtime changed`);
    }
    return problems;
  }
}

export interface ContainerFindings {
  requests: number;
  spoofed: { requestId: string; header: string; value: string }[];
  wrongRequestId: number;
}

const owned = WORKER_OWNED.map((n) => n.toLowerCase());

export async function startFuzzContainer(
  canaries: Canaries,
): Promise<{ container: TestContainer; findings: ContainerFindings }> {
  const findings: ContainerFindings = { requests: 0, spoofed: [], wrongRequestId: 0 };
  const container = await TestContainer.start(async (req, res) => {
    findings.requests++;
    let order: { rid?: string } & Partial<ContainerAct> = {};
    try {
      order = JSON.parse(req.body.toString()) as typeof order;
    } catch {
      // A truncated body: just echo it.
    }
    for (const name of owned) {
      const value = req.headers[name];
      if (value !== undefined && String(value).includes(SPOOF))
        findings.spoofed.push({ requestId: String(order.rid), header: name, value: String(value).slice(0, 80) });
    }
    if (order.rid && req.headers['nvcf-reqid'] !== order.rid) findings.wrongRequestId++;
    // Keep the seen-request log from growing across ten thousand cases.
    container.seen.length = 0;
    const dir = String(req.headers['nvcf-large-output-dir']);
    await act(order as ContainerAct, dir, canaries).catch(() => undefined);
    // More response headers than the protocol carries (256): the worker must answer with a clear problem.
    const extra =
      order.act === 'many-headers'
        ? Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`x-many-${i}`, 'v']))
        : {};
    res.writeHead(200, { 'content-type': 'application/json', ...extra }).end(req.body);
  });
  return { container, findings };
}

const settle = (): Promise<void> => sleep(60);

async function act(order: ContainerAct, dir: string, canaries: Canaries): Promise<void> {
  switch (order.act) {
    case 'progress':
      await writeFile(join(dir, 'progress'), order.content);
      return settle();
    case 'progress-fifo':
      execFileSync('mkfifo', [join(dir, 'progress')]);
      return settle();
    case 'progress-symlink':
      await symlink(join(canaries.dir, 'progress'), join(dir, 'progress'));
      return settle();
    case 'progress-dir':
      await mkdir(join(dir, 'progress'));
      return settle();
    case 'output-fifo':
      execFileSync('mkfifo', [join(dir, 'out.bin')]);
      return;
    case 'output-symlink-file':
      await symlink(join(canaries.dir, 'secret.bin'), join(dir, 'leak.bin'));
      return;
    case 'output-symlink-dir':
      await symlink(canaries.dir, join(dir, 'leakdir'));
      return;
    case 'output-hardlink':
      // A second name for a file outside: a regular file, so only its link count gives it away.
      await link(join(canaries.dir, 'secret.bin'), join(dir, 'hard.bin'));
      return;
    case 'sleep':
      return void (await sleep(order.ms));
    case 'replace-dir':
      // The whole request directory swapped for a link to the canaries, progress file included.
      await rm(dir, { recursive: true, force: true });
      await symlink(canaries.dir, dir);
      return settle();
    case 'outputs':
      for (const name of order.names) {
        const path = join(dir, name);
        await mkdir(join(path, '..'), { recursive: true });
        await writeFile(path, `output ${name.length}`);
      }
      return;
    case 'many-files': {
      const batch: Promise<void>[] = [];
      for (let i = 0; i < order.count; i++) {
        const sub = join(dir, `d${Math.floor(i / 1000)}`);
        if (i % 1000 === 0) await mkdir(sub, { recursive: true });
        batch.push(writeFile(join(sub, `f${i}.txt`), String(i)));
        if (batch.length >= 256) await Promise.all(batch.splice(0));
      }
      await Promise.all(batch);
      return;
    }
    default:
  }
}
