import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { request } from 'undici';
import { SidecarError, errorCode } from '../../shared/errors.js';
import type { AssetReference } from '../../shared/protocol.js';
import { observePhase, type WorkerMetrics } from '../metrics.js';
import { makeSharedDir } from '../shared-dir.js';

export interface AssetLimits {
  maxBytes: number;
  timeoutMs: number;
}

/**
 * Downloads every input asset of a request, all at once, each streamed to
 * `<dir>/<assetId>` (no extension, mode 0644), before the container is called. The directory is
 * created only when there are assets. Asset ids are UUIDs (the protocol rejects anything else),
 * so no id can make a path outside `dir`. The first failure aborts the other downloads.
 */
export async function downloadAssets(
  assets: readonly AssetReference[],
  dir: string,
  limits: AssetLimits,
  signal: AbortSignal,
  metrics?: WorkerMetrics,
): Promise<void> {
  if (assets.length === 0) return;
  try {
    await makeSharedDir(dir);
  } catch (err) {
    throw new SidecarError(
      'PREPARE_FAILED',
      `could not create the asset directory: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      { cause: err },
    );
  }
  const failFast = new AbortController();
  const onAbort = () => failFast.abort(signal.reason);
  signal.addEventListener('abort', onAbort, { once: true });
  const timers: NodeJS.Timeout[] = [];
  const startedAt = performance.now();
  try {
    const sizes = await Promise.all(
      assets.map((asset) => {
        // Each asset has its own time limit; the first failure stops the others too.
        const own = new AbortController();
        const stop = (reason: unknown) => own.abort(reason);
        failFast.signal.addEventListener('abort', () => stop(failFast.signal.reason), { once: true });
        timers.push(
          setTimeout(
            () =>
              stop(
                new SidecarError(
                  'ASSET_DOWNLOAD_FAILED',
                  `asset ${asset.assetId} took longer than ${limits.timeoutMs / 1000}s (ASSET_DOWNLOAD_TIMEOUT)`,
                ),
              ),
            limits.timeoutMs,
          ),
        );
        return downloadOne(asset, join(dir, asset.assetId), limits.maxBytes, own.signal).catch((err: unknown) => {
          failFast.abort(own.signal.aborted ? own.signal.reason : err);
          throw err;
        });
      }),
    );
    observePhase(
      metrics,
      'asset_download',
      startedAt,
      sizes.reduce((sum, size) => sum + size, 0),
    );
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    const first: unknown = failFast.signal.reason ?? err;
    if (first instanceof SidecarError) throw first;
    throw new SidecarError('ASSET_DOWNLOAD_FAILED', errorCode(first), { cause: first });
  } finally {
    timers.forEach(clearTimeout);
    signal.removeEventListener('abort', onAbort);
  }
}

/** Resolves with the asset's size in bytes. */
async function downloadOne(
  asset: AssetReference,
  path: string,
  maxBytes: number,
  signal: AbortSignal,
): Promise<number> {
  let answer;
  try {
    answer = await request(asset.url, { signal, headersTimeout: 60_000, bodyTimeout: 60_000 });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw new SidecarError('ASSET_DOWNLOAD_FAILED', `asset ${asset.assetId}: ${errorCode(err)}`, { cause: err });
  }
  if (answer.statusCode !== 200) {
    answer.body.on('error', () => undefined).destroy();
    throw new SidecarError('ASSET_DOWNLOAD_FAILED', `asset ${asset.assetId} answered ${answer.statusCode}`);
  }
  const declared = Number(answer.headers['content-length']);
  if (Number.isFinite(declared) && declared > maxBytes) {
    answer.body.on('error', () => undefined).destroy();
    throw new SidecarError(
      'ASSET_DOWNLOAD_FAILED',
      `asset ${asset.assetId} is ${declared} bytes, over the ${maxBytes}-byte limit (ASSET_MAX_BYTES)`,
    );
  }
  const cap = new SizeCap(maxBytes, asset.assetId);
  try {
    // 'wx': the file is new; an existing one (a hostile pre-made link) is an error, not a target.
    await pipeline(answer.body, cap, createWriteStream(path, { flags: 'wx', mode: 0o644 }), { signal });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    if (err instanceof SidecarError) throw err;
    throw new SidecarError('ASSET_DOWNLOAD_FAILED', `asset ${asset.assetId}: ${errorCode(err)}`, { cause: err });
  }
  return cap.seen;
}

/** Fails the stream as soon as more than `max` bytes have passed, whatever the server claimed. */
class SizeCap extends Transform {
  seen = 0;
  constructor(
    private readonly max: number,
    private readonly assetId: string,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.max) {
      done(
        new SidecarError(
          'ASSET_DOWNLOAD_FAILED',
          `asset ${this.assetId} is over the ${this.max}-byte limit (ASSET_MAX_BYTES)`,
        ),
      );
      return;
    }
    done(null, chunk);
  }
}
