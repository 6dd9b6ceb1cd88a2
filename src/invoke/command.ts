import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, extname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extractZip } from './unzip.js';

const USAGE = `usage: nvcf-sidecar invoke <functionId> [options]

  -d, --data DATA       request body; @FILE reads it from a file
  -H, --header 'N: V'   an extra request header (repeatable)
  --version ID          call this function version
  --asset FILE          upload FILE as an asset and reference it (repeatable)
  --out DIR             where a 302 result zip is unpacked (default ./nvcf-result-<requestId>)
  --poll-seconds N      poll window for each call (default 5)
  --gateway URL         gateway address (env NVCF_GATEWAY_URL, default http://127.0.0.1:8090)
  --api-key KEY         bearer key (env NVCF_API_KEY)`;

interface InvokeOptions {
  functionId: string;
  versionId?: string;
  data?: string;
  headers: [string, string][];
  assets: string[];
  out?: string;
  pollSeconds: string;
  gateway: string;
  apiKey?: string;
}

class UsageError extends Error {}

function parseArgs(args: readonly string[], env: NodeJS.ProcessEnv): InvokeOptions {
  const options: InvokeOptions = {
    functionId: '',
    headers: [],
    assets: [],
    pollSeconds: '5',
    gateway: env.NVCF_GATEWAY_URL ?? 'http://127.0.0.1:8090',
    ...(env.NVCF_API_KEY ? { apiKey: env.NVCF_API_KEY } : {}),
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = () => {
      const v = args[++i];
      if (v === undefined) throw new UsageError(`${arg} needs a value`);
      return v;
    };
    if (arg === '-d' || arg === '--data') options.data = value();
    else if (arg === '-H' || arg === '--header') {
      const text = value();
      const colon = text.indexOf(':');
      if (colon < 1) throw new UsageError(`-H wants "Name: value", not "${text}"`);
      options.headers.push([text.slice(0, colon).trim(), text.slice(colon + 1).trim()]);
    } else if (arg === '--version') options.versionId = value();
    else if (arg === '--asset') options.assets.push(value());
    else if (arg === '--out') options.out = value();
    else if (arg === '--poll-seconds') options.pollSeconds = value();
    else if (arg === '--gateway') options.gateway = value();
    else if (arg === '--api-key') options.apiKey = value();
    else if (arg.startsWith('-')) throw new UsageError(`unknown option "${arg}"`);
    else if (!options.functionId) options.functionId = arg;
    else throw new UsageError(`unexpected argument "${arg}"`);
  }
  if (!options.functionId) throw new UsageError('which function? give its id');
  options.gateway = options.gateway.replace(/\/+$/, '');
  return options;
}

const MEDIA_TYPES: Record<string, string> = {
  '.json': 'application/json',
  '.txt': 'text/plain',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.wav': 'audio/wav',
  '.mp4': 'video/mp4',
  '.zip': 'application/zip',
};

/** A failure to report: the problem's detail when the gateway sent one. */
class CallFailed extends Error {}

async function failure(res: Response, what: string): Promise<CallFailed> {
  const text = await res.text();
  let detail = text.slice(0, 2000);
  try {
    detail = (JSON.parse(text) as { detail?: string }).detail ?? detail;
  } catch {
    // Not a problem body; show what came.
  }
  return new CallFailed(`${what} failed with ${res.status}: ${detail || res.statusText}`);
}

/** Draws `[#####.....]  50%` on stderr: in place on a terminal, one line per change otherwise. */
function progressBar(percent: number): string {
  const filled = Math.round(percent / 5);
  return `[${'#'.repeat(filled)}${'.'.repeat(20 - filled)}] ${String(percent).padStart(3)}%`;
}

/** `nvcf-sidecar invoke`: one call, followed through polling, streaming or a result zip. */
export async function runInvoke(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let options: InvokeOptions;
  try {
    options = parseArgs(args, env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`nvcf-sidecar invoke: ${err.message}\n\n${USAGE}\n`);
    return 2;
  }
  const auth: Record<string, string> = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
  const tty = process.stderr.isTTY;
  try {
    const assetIds: string[] = [];
    for (const file of options.assets) {
      const contentType = MEDIA_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
      const created = await fetch(`${options.gateway}/v2/nvcf/assets`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ contentType, description: basename(file) }),
      });
      if (!created.ok) throw await failure(created, `creating an asset for ${file}`);
      const { assetId, uploadUrl } = (await created.json()) as { assetId: string; uploadUrl: string };
      const size = (await stat(file)).size;
      const put = await fetch(uploadUrl, {
        method: 'PUT',
        headers: { 'content-type': contentType, 'content-length': String(size) },
        body: Readable.toWeb(createReadStream(file)) as ReadableStream,
        duplex: 'half',
      });
      if (!put.ok) throw await failure(put, `uploading ${file}`);
      process.stderr.write(`uploaded ${file} as asset ${assetId}\n`);
      assetIds.push(assetId);
    }

    const body =
      options.data === undefined
        ? undefined
        : options.data.startsWith('@')
          ? await readFile(options.data.slice(1))
          : options.data;
    const headers: Record<string, string> = { ...auth, 'NVCF-POLL-SECONDS': options.pollSeconds };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (assetIds.length > 0) headers['NVCF-INPUT-ASSET-REFERENCES'] = assetIds.join(',');
    for (const [name, value] of options.headers) headers[name] = value;
    const target = `${options.gateway}/v2/nvcf/pexec/functions/${options.functionId}${options.versionId ? `/versions/${options.versionId}` : ''}`;
    let res = await fetch(target, {
      method: 'POST',
      headers,
      redirect: 'manual',
      ...(body !== undefined ? { body } : {}),
    });
    let lastPartial = '';
    let lastPercent = -1;
    while (res.status === 202) {
      const requestId = res.headers.get('nvcf-reqid')!;
      const percent = Number(res.headers.get('nvcf-percent-complete') ?? NaN);
      const partial = await res.text();
      if (Number.isFinite(percent) && percent !== lastPercent) {
        process.stderr.write(tty ? `\r${progressBar(percent)}` : `${progressBar(percent)}\n`);
        lastPercent = percent;
      }
      if (partial && partial !== lastPartial) {
        process.stderr.write(`${tty ? '\n' : ''}partial: ${partial}\n`);
        lastPartial = partial;
      }
      res = await fetch(`${options.gateway}/v2/nvcf/pexec/status/${requestId}`, {
        headers: { ...auth, 'NVCF-POLL-SECONDS': options.pollSeconds },
        redirect: 'manual',
      });
    }
    if (tty && lastPercent >= 0) process.stderr.write('\n');
    const requestId = res.headers.get('nvcf-reqid') ?? 'unknown';
    if (res.status === 302) return await unpack(res, requestId, options.out);
    if (res.status >= 400) throw await failure(res, `request ${requestId}`);
    // Event streams and inline bodies alike go to stdout as they arrive.
    if (res.body)
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) process.stdout.write(chunk);
    return 0;
  } catch (err) {
    const message =
      err instanceof CallFailed
        ? err.message
        : `cannot reach the gateway at ${options.gateway}: ${(err as Error).message}${(err as { cause?: Error }).cause ? ` (${(err as { cause: Error }).cause.message})` : ''}`;
    process.stderr.write(`nvcf-sidecar invoke: ${message}\n`);
    return 1;
  }
}

/** Follows the 302: downloads the zip, unpacks it, and prints the response body it holds. */
async function unpack(res: Response, requestId: string, out: string | undefined): Promise<number> {
  const location = res.headers.get('location');
  if (!location) throw new CallFailed(`request ${requestId} answered 302 without a Location`);
  const zip = await fetch(location);
  if (!zip.ok) throw await failure(zip, 'downloading the result');
  const scratch = await mkdtemp(join(tmpdir(), 'nvcf-invoke-'));
  try {
    const zipPath = join(scratch, 'result.zip');
    // Results run to gigabytes: stream them to disk, never through memory.
    await pipeline(Readable.fromWeb(zip.body!), createWriteStream(zipPath));
    const dir = resolve(out ?? `nvcf-result-${requestId}`);
    await mkdir(dir, { recursive: true });
    const files = await extractZip(zipPath, dir);
    process.stderr.write(
      `result ${requestId}: ${files.length} file(s) in ${dir}\n${files.map((f) => `  ${f}\n`).join('')}`,
    );
    const response = files.find((f) => f === `${requestId}.response`);
    if (response) process.stdout.write(await readFile(join(dir, response)));
    return 0;
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
