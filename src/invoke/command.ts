import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { basename, extname, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { EXIT, UsageError, answerHelpOrVersion, parseCommandArgs } from '../shared/command-line.js';
import { printFunctions } from './list.js';
import { CallFailed, problemDetail, refuseNonEmptyOut, unpack, writeBody } from './result.js';
import { StatusLine } from './status-line.js';

export const INVOKE_USAGE = `usage: nvcf-sidecar invoke <functionId> [options]
       nvcf-sidecar invoke --list [--gateway URL] [--api-key KEY]

  -d, --data DATA             request body (sent as application/json); @FILE reads it from FILE
  -H, --header 'N: V'         an extra request header (repeatable)
  --function-version ID       call this version of the function (default: any active one)
  --asset FILE                upload FILE as an asset and reference it (repeatable)
  --out DIR                   a new or empty folder for a 302 result's files (default ./nvcf-result-<requestId>)
  --poll-seconds N            how long each status poll may wait (default 5)
  --gateway URL               gateway address (env NVCF_GATEWAY_URL, default http://127.0.0.1:8090)
  --api-key KEY               bearer key (env NVCF_API_KEY)
  --list                      list the gateway's functions (id, version, name, status) instead of calling one
  -h, --help                  show this text
  --version                   print nvcf-sidecar's version

The result body goes to stdout; the request id, progress and errors go to stderr.
Exit codes: 0 done, 1 the call failed, 2 bad arguments or an unreadable input file.`;

const OPTIONS = {
  data: { type: 'string', short: 'd' },
  header: { type: 'string', short: 'H', multiple: true },
  'function-version': { type: 'string' },
  asset: { type: 'string', multiple: true },
  out: { type: 'string' },
  'poll-seconds': { type: 'string' },
  gateway: { type: 'string' },
  'api-key': { type: 'string' },
  list: { type: 'boolean' },
} as const;

/** What `--list` needs: where the gateway is. */
interface ListOptions {
  list: true;
  gateway: string;
  apiKey: string | undefined;
}

const CALL_ONLY = ['data', 'header', 'function-version', 'asset', 'out', 'poll-seconds'] as const;

interface InvokeOptions {
  functionId: string;
  versionId: string | undefined;
  body: Buffer | string | undefined;
  headers: [string, string][];
  assets: string[];
  out: string | undefined;
  pollSeconds: string;
  gateway: string;
  apiKey: string | undefined;
}

/** Reads arguments and every input file before anything is sent: a typo costs no request. */
async function readOptions(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<InvokeOptions | ListOptions | number> {
  const parsed = parseCommandArgs(args, OPTIONS);
  const answered = answerHelpOrVersion(parsed, INVOKE_USAGE);
  if (answered !== undefined) return answered;
  const { values, positionals } = parsed;
  const gateway = (values.gateway ?? env.NVCF_GATEWAY_URL ?? 'http://127.0.0.1:8090').replace(/\/+$/, '');
  const apiKey = values['api-key'] ?? (env.NVCF_API_KEY || undefined);
  if (values.list) {
    if (positionals.length > 0) throw new UsageError(`--list calls no function; unexpected "${positionals[0]}"`);
    const stray = CALL_ONLY.find((name) => values[name] !== undefined);
    if (stray) throw new UsageError(`--${stray} is for calling a function, not for --list`);
    return { list: true, gateway, apiKey };
  }
  const [functionId, ...extra] = positionals;
  if (!functionId) throw new UsageError('which function? give its id');
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const headers = (values.header ?? []).map((text): [string, string] => {
    const colon = text.indexOf(':');
    if (colon < 1) throw new UsageError(`-H wants "Name: value", not "${text}"`);
    return [text.slice(0, colon).trim(), text.slice(colon + 1).trim()];
  });
  const pollSeconds = values['poll-seconds'] ?? '5';
  if (!/^\d+$/.test(pollSeconds) || Number(pollSeconds) < 1 || Number(pollSeconds) > 3600)
    throw new UsageError(`--poll-seconds must be a whole number from 1 to 3600, not "${pollSeconds}"`);
  const data = values.data;
  const body = data?.startsWith('@') ? await readInput(data.slice(1), readFile) : data;
  const assets = values.asset ?? [];
  for (const file of assets) await readInput(file, stat);
  if (values.out !== undefined) await refuseNonEmptyOut(resolve(values.out)).catch(asUsage);
  return {
    functionId,
    versionId: values['function-version'],
    body,
    headers,
    assets,
    out: values.out,
    pollSeconds,
    gateway,
    apiKey,
  };
}

async function readInput<T>(file: string, read: (path: string) => Promise<T>): Promise<T> {
  try {
    return await read(file);
  } catch (err) {
    const { code, message } = err as NodeJS.ErrnoException;
    const reason = /^\w+: ([^,]+)/.exec(message)?.[1];
    throw new UsageError(`cannot read ${file}: ${code ?? message}${reason ? ` (${reason})` : ''}`);
  }
}

function asUsage(err: unknown): never {
  throw err instanceof CallFailed ? new UsageError(err.message) : err;
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

/** `nvcf-sidecar invoke`: one call, followed through polling, streaming or a result zip. */
export async function runInvoke(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let options;
  try {
    options = await readOptions(args, env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`nvcf-sidecar invoke: ${err.message}\n\nrun "nvcf-sidecar invoke --help" for the options\n`);
    return EXIT.badConfiguration;
  }
  if (typeof options === 'number') return options;
  if ('list' in options) {
    try {
      await printFunctions(options.gateway, options.apiKey);
      return EXIT.ok;
    } catch (err) {
      process.stderr.write(`nvcf-sidecar invoke: ${describe(err, options.gateway)}\n`);
      return EXIT.failed;
    }
  }
  const status = new StatusLine();
  try {
    await call(options, status);
    return EXIT.ok;
  } catch (err) {
    status.finish(false);
    process.stderr.write(`nvcf-sidecar invoke: ${describe(err, options.gateway)}\n`);
    return EXIT.failed;
  }
}

function describe(err: unknown, gateway: string): string {
  if (err instanceof CallFailed) return err.message;
  const cause = (err as { cause?: NodeJS.ErrnoException }).cause;
  // fetch() says only "fetch failed"; the cause holds the reason (ECONNREFUSED, ENOTFOUND, ...).
  return `cannot reach the gateway at ${gateway}: ${cause ? (cause.code ?? cause.message) : (err as Error).message}`;
}

async function call(options: InvokeOptions, status: StatusLine): Promise<void> {
  const auth: Record<string, string> = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
  const assetIds: string[] = [];
  for (const file of options.assets) assetIds.push(await uploadAsset(file, options.gateway, auth, status));

  // The first call waits at most a second, so the request id shows at once even for long jobs.
  const headers: Record<string, string> = { ...auth, 'NVCF-POLL-SECONDS': '1' };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (assetIds.length > 0) headers['NVCF-INPUT-ASSET-REFERENCES'] = assetIds.join(',');
  for (const [name, value] of options.headers) headers[name] = value;
  const target = `${options.gateway}/v2/nvcf/pexec/functions/${encodeURIComponent(options.functionId)}${options.versionId ? `/versions/${encodeURIComponent(options.versionId)}` : ''}`;
  status.start();
  let res = await fetch(target, {
    method: 'POST',
    headers,
    redirect: 'manual',
    ...(options.body !== undefined ? { body: options.body } : {}),
  });
  let requestId = res.headers.get('nvcf-reqid');
  if (requestId) status.say(`request ${requestId}`);
  let lastPartial = '';
  while (res.status === 202 && requestId) {
    const percent = Number(res.headers.get('nvcf-percent-complete') ?? NaN);
    const partial = await res.text();
    if (Number.isFinite(percent)) status.progress(percent);
    if (partial && partial !== lastPartial) status.say(`partial: ${partial.trimEnd()}`);
    lastPartial = partial || lastPartial;
    res = await fetch(`${options.gateway}/v2/nvcf/pexec/status/${requestId}`, {
      headers: { ...auth, 'NVCF-POLL-SECONDS': options.pollSeconds },
      redirect: 'manual',
    });
  }
  if (res.status >= 400 || res.status === 202) {
    const detail = await problemDetail(res);
    throw new CallFailed(
      requestId ? `request ${requestId} failed (HTTP ${res.status}): ${detail}` : `${detail} (HTTP ${res.status})`,
    );
  }
  requestId ??= res.headers.get('nvcf-reqid');
  status.finish(true);
  if (res.status === 302) {
    const location = res.headers.get('location');
    if (!location) throw new CallFailed(`request ${requestId} answered 302 without a Location`);
    return unpack(location, requestId ?? 'unknown', options.out, status);
  }
  // Event streams and inline bodies alike go to stdout as they arrive.
  await writeBody(res.body as AsyncIterable<Uint8Array> | null);
}

async function uploadAsset(
  file: string,
  gateway: string,
  auth: Record<string, string>,
  status: StatusLine,
): Promise<string> {
  const contentType = MEDIA_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
  const created = await fetch(`${gateway}/v2/nvcf/assets`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ contentType, description: basename(file) }),
  });
  if (!created.ok)
    throw new CallFailed(
      `creating an asset for ${file} failed (HTTP ${created.status}): ${await problemDetail(created)}`,
    );
  const { assetId, uploadUrl } = (await created.json()) as { assetId: string; uploadUrl: string };
  const size = (await stat(file)).size;
  const put = await fetch(uploadUrl, {
    method: 'PUT',
    headers: { 'content-type': contentType, 'content-length': String(size) },
    body: Readable.toWeb(createReadStream(file)) as ReadableStream,
    duplex: 'half',
  });
  if (!put.ok) throw new CallFailed(`uploading ${file} failed (HTTP ${put.status}): ${await problemDetail(put)}`);
  status.say(`uploaded ${file} as asset ${assetId}`);
  return assetId;
}
