import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { NvcfError } from '../shared/errors.js';
import type { StatusLine } from './status-line.js';
import { extractZip } from './unzip.js';

/**
 * A failure to report as it stands (the gateway's or the container's own words). The command
 * does not call again on its own: the person reading the message decides.
 */
export class CallFailed extends NvcfError {
  override name = 'CallFailed';
  readonly retry = 'give-up';
}

/** The problem's `detail` when the answer is problem+json, else the start of the body. */
export async function problemDetail(res: Response): Promise<string> {
  const text = await res.text();
  try {
    const detail = (JSON.parse(text) as { detail?: unknown }).detail;
    if (typeof detail === 'string' && detail) return detail;
  } catch {
    // Not a problem body; show what came.
  }
  return text.slice(0, 2000).trim() || res.statusText;
}

/**
 * Copies a body (inline, or an event stream as it arrives) to stdout. On a terminal a body that
 * does not end with a newline gets one, so the shell prompt (or npm's spinner clearing its
 * line) does not hide its last line; a pipe gets the bytes exactly as sent.
 */
export async function writeBody(
  body: AsyncIterable<Uint8Array> | Iterable<Uint8Array> | null,
  out: NodeJS.WriteStream = process.stdout,
): Promise<void> {
  let last: number | undefined;
  if (body)
    for await (const chunk of body) {
      if (chunk.length === 0) continue;
      last = chunk[chunk.length - 1];
      if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
    }
  if (out.isTTY && last !== undefined && last !== 0x0a) out.write('\n');
}

/**
 * `--out` must not mix two requests' files: a folder that already holds anything is refused
 * (checked before the request is sent, and again before unpacking).
 */
export async function refuseNonEmptyOut(dir: string): Promise<void> {
  const entries = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return [];
    throw new CallFailed(`cannot use --out ${dir}: ${err.code ?? err.message}`);
  });
  if (entries.length > 0)
    throw new CallFailed(
      `--out ${dir} already holds ${entries.length} file(s) (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}); give a new or empty folder, so that two requests' files never mix (without --out each result gets its own nvcf-result-<requestId>)`,
    );
}

/** Follows the 302: downloads the zip with progress, unpacks it, and prints the response body it holds. */
export async function unpack(
  location: string,
  requestId: string,
  out: string | undefined,
  status: StatusLine,
): Promise<void> {
  const zip = await fetch(location);
  if (!zip.ok || !zip.body)
    throw new CallFailed(
      `downloading the result of ${requestId} failed (HTTP ${zip.status}): ${await problemDetail(zip)}`,
    );
  const dir = resolve(out ?? `nvcf-result-${requestId}`);
  await refuseNonEmptyOut(dir);
  const total = Number(zip.headers.get('content-length')) || undefined;
  const scratch = await mkdtemp(join(tmpdir(), 'nvcf-invoke-'));
  try {
    const zipPath = join(scratch, 'result.zip');
    let received = 0;
    status.downloading(0, total);
    // Results run to gigabytes: stream them to disk, never through memory.
    await pipeline(
      Readable.fromWeb(zip.body),
      async function* (source: AsyncIterable<Buffer>) {
        for await (const chunk of source) {
          received += chunk.length;
          status.downloading(received, total);
          yield chunk;
        }
      },
      createWriteStream(zipPath),
    );
    status.finish(true);
    await mkdir(dir, { recursive: true });
    // A zip that cannot be unpacked is the result's fault, not the gateway's: say so, not "cannot reach".
    const files = await extractZip(zipPath, dir).catch((err: Error) => {
      throw new CallFailed(`cannot unpack the result of ${requestId}: ${err.message}`, { cause: err });
    });
    status.say([`result ${requestId}: ${files.length} file(s) in ${dir}`, ...files.map((f) => `  ${f}`)].join('\n'));
    const response = files.find((f) => f === `${requestId}.response`);
    if (response) await writeBody([await readFile(join(dir, response))]);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
