import { NvcfError } from '../../shared/errors.js';
import type { HeaderList, OutputFile, ResponseMeta, SkippedFile } from '../../shared/protocol.js';
import type { Frame } from '../../shared/frame-codec.js';

export type ResultEvent =
  | { type: 'progress'; percentComplete: number; headers: HeaderList; body: Uint8Array }
  | { type: 'output'; files: OutputFile[] }
  | { type: 'head'; status: number; headers: HeaderList }
  | { type: 'data'; bytes: Uint8Array }
  | {
      type: 'final';
      status: number;
      headers: HeaderList;
      body: Uint8Array;
      streamed: boolean;
      error?: string;
      manifest?: { files: OutputFile[]; skipped: SkippedFile[]; fileCount: number; skippedCount: number };
    };

/** The response messages of a request do not add up to an answer; reading them again cannot fix that. */
export class ResultAssemblyError extends NvcfError {
  override name = 'ResultAssemblyError';
  readonly retry = 'give-up';
}

/**
 * Turns the response messages of one request, in stream order, into what a caller sees:
 * progress, then either a buffered final or a streamed head, data and end. Chunks are ordered
 * by index, since a retried publish may land after a later one. Several attempts can leave
 * messages (a worker crashed mid-run): only the attempt that published the final counts, and
 * only the first final is ever reported.
 */
export class ResultAssembler {
  private readonly chunks = new Map<number, Map<number, Uint8Array>>();
  private streamAttempt: number | undefined;
  private nextIndex = 0;
  private finished = false;

  get done(): boolean {
    return this.finished;
  }

  push({ meta, body }: Frame<ResponseMeta>): ResultEvent[] {
    if (this.finished) return [];
    switch (meta.kind) {
      case 'progress':
        return [{ type: 'progress', percentComplete: meta.percentComplete, headers: meta.headers, body }];
      case 'output':
        return [{ type: 'output', files: meta.files }];
      case 'head':
        if (this.streamAttempt !== undefined) return [];
        this.streamAttempt = meta.attempt;
        return [{ type: 'head', status: meta.status, headers: meta.headers }, ...this.flushStream()];
      case 'chunk':
        // Once a stream is under way, another attempt's pieces can never be delivered.
        if (this.streamAttempt !== undefined && meta.attempt !== this.streamAttempt) return [];
        this.chunksOf(meta.attempt).set(meta.index, body);
        return meta.attempt === this.streamAttempt ? this.flushStream() : [];
      case 'final':
        return this.final(meta, body);
    }
  }

  private final(meta: Extract<ResponseMeta, { kind: 'final' }>, body: Uint8Array): ResultEvent[] {
    this.finished = true;
    const base = {
      status: meta.status,
      headers: meta.headers,
      ...(meta.error ? { error: meta.error } : {}),
      ...(meta.manifest ? { manifest: meta.manifest } : {}),
    };
    if (this.streamAttempt !== undefined && meta.attempt !== this.streamAttempt) {
      // The caller holds part of one run's stream; another run's answer cannot be spliced on.
      const error = 'the stream was interrupted: its worker stopped and the request ran again';
      return [{ type: 'final', ...base, error, body: new Uint8Array(0), streamed: true }];
    }
    if (meta.streamed && meta.attempt === this.streamAttempt) {
      const rest = this.flushStream();
      if (this.nextIndex !== meta.chunks)
        throw new ResultAssemblyError(`stream ended after ${this.nextIndex} of ${meta.chunks} chunks`);
      return [...rest, { type: 'final', ...base, body: new Uint8Array(0), streamed: true }];
    }
    // A buffered final, or a streamed one whose head this caller never saw: collect its body.
    const parts: Uint8Array[] = [];
    const chunks = this.chunksOf(meta.attempt);
    for (let i = 0; i < meta.chunks; i++) {
      const part = chunks.get(i);
      if (!part) throw new ResultAssemblyError(`chunk ${i} of ${meta.chunks} is missing`);
      parts.push(part);
    }
    this.chunks.clear();
    return [{ type: 'final', ...base, body: meta.chunks > 0 ? Buffer.concat(parts) : body, streamed: false }];
  }

  private flushStream(): ResultEvent[] {
    const chunks = this.chunksOf(this.streamAttempt!);
    const out: ResultEvent[] = [];
    for (let part = chunks.get(this.nextIndex); part; part = chunks.get(this.nextIndex)) {
      chunks.delete(this.nextIndex++);
      out.push({ type: 'data', bytes: part });
    }
    return out;
  }

  private chunksOf(attempt: number): Map<number, Uint8Array> {
    let map = this.chunks.get(attempt);
    if (!map) this.chunks.set(attempt, (map = new Map<number, Uint8Array>()));
    return map;
  }
}
