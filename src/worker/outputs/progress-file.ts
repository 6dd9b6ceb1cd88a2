import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { Logger } from '../../shared/log.js';
import { readSmallOutput } from './file-rules.js';
import type { HeaderList } from '../../shared/protocol.js';

/** NVCF's documented bound on a partial response ("smaller than 250KB"), enforced here. */
const MAX_PARTIAL_RESPONSE_BYTES = 250_000;
/** The whole file: the partial response plus room for the id, the progress and whitespace. */
const MAX_PROGRESS_FILE_BYTES = MAX_PARTIAL_RESPONSE_BYTES + 16 * 1024;
/** A file written in place can be caught half-written; read again this many times, this far apart. */
const HALF_WRITTEN_RETRIES = 5;
const HALF_WRITTEN_DELAY_MS = 20;

const ProgressFile = z.looseObject({
  id: z.string().optional(),
  progress: z.number().int().min(0).max(100),
  partialResponse: z.unknown().optional(),
});

export type ProgressReading =
  { ok: true; percentComplete: number; body: Buffer } | { ok: false; reason: string; maybeHalfWritten: boolean };

/** Validates the `progress` file as NVCF documents it: `{id, progress 0..100, partialResponse}`. */
export function readProgress(text: string, requestId: string): ProgressReading {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `not valid JSON: ${(err as Error).message}`, maybeHalfWritten: true };
  }
  const parsed = ProgressFile.safeParse(json);
  if (!parsed.success) {
    const reason = parsed.error.issues.map((i) => `${i.path.join('.') || 'file'}: ${i.message}`).join('; ');
    return { ok: false, reason, maybeHalfWritten: false };
  }
  const { id, progress, partialResponse } = parsed.data;
  if (id !== undefined && id !== requestId) {
    return { ok: false, reason: `its id "${id.slice(0, 64)}" is not this request's id`, maybeHalfWritten: false };
  }
  let body: Buffer;
  try {
    body = partialResponse === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(partialResponse));
  } catch (err) {
    // JSON.parse takes nesting that JSON.stringify cannot recurse through (a RangeError).
    return {
      ok: false,
      reason: `partialResponse cannot be re-encoded: ${(err as Error).message}`,
      maybeHalfWritten: false,
    };
  }
  if (body.length > MAX_PARTIAL_RESPONSE_BYTES) {
    return {
      ok: false,
      reason: `partialResponse is ${body.length} bytes, over the ${MAX_PARTIAL_RESPONSE_BYTES}-byte limit`,
      maybeHalfWritten: false,
    };
  }
  return { ok: true, percentComplete: progress, body };
}

export type SendProgress = (percentComplete: number, headers: HeaderList, body: Buffer) => Promise<void>;

const PROGRESS_HEADERS: HeaderList = [['Content-Type', 'application/json']];

/**
 * Turns changes of one request's progress file into progress messages: each change is read
 * (again, briefly, if it looks half-written), validated, and sent; bursts coalesce so the
 * latest state wins, sends never overlap, and nothing is sent once `close` has been called.
 */
export class ProgressReporter {
  private reading = false;
  private dirty = false;
  private pending: { percentComplete: number; body: Buffer } | undefined;
  private sending: Promise<void> | undefined;
  private last = '';
  private closed = false;

  constructor(
    private readonly path: string,
    /** The real path of the output directory, which the file must be inside. */
    private readonly realRoot: () => string,
    private readonly requestId: string,
    private readonly send: SendProgress,
    private readonly log: Logger,
  ) {}

  /** The file was created, written or renamed into place. */
  changed(): void {
    if (this.closed) return;
    if (this.reading) {
      this.dirty = true;
      return;
    }
    this.reading = true;
    void this.readUntilSettled().finally(() => (this.reading = false));
  }

  /** Stops reporting; resolves once a send already under way has been acknowledged. */
  async close(): Promise<void> {
    this.closed = true;
    this.pending = undefined;
    await this.sending;
  }

  private async readUntilSettled(): Promise<void> {
    do {
      this.dirty = false;
      const reading = await this.readWithRetries();
      if (this.closed) return;
      if (reading.ok) this.offer(reading);
      else if (!this.dirty) this.log.warn({ reason: reading.reason }, 'progress file ignored');
    } while (this.dirty && !this.closed);
  }

  private async readWithRetries(): Promise<ProgressReading> {
    let reading: ProgressReading = { ok: false, reason: 'not read', maybeHalfWritten: true };
    for (let attempt = 0; attempt <= HALF_WRITTEN_RETRIES; attempt++) {
      if (attempt > 0) await sleep(HALF_WRITTEN_DELAY_MS);
      if (this.closed || (attempt > 0 && this.dirty)) return reading;
      const file = await readSmallOutput(this.realRoot(), this.path, MAX_PROGRESS_FILE_BYTES);
      if ('refused' in file) return { ok: false, reason: `not read: ${file.refused}`, maybeHalfWritten: false };
      reading = readProgress(file.text, this.requestId);
      if (reading.ok || !reading.maybeHalfWritten) return reading;
    }
    return reading;
  }

  private offer(update: { percentComplete: number; body: Buffer }): void {
    const key = `${update.percentComplete}:${update.body.toString('base64')}`;
    if (key === this.last) return;
    this.last = key;
    this.pending = update;
    this.sending ??= this.pump().finally(() => (this.sending = undefined));
  }

  private async pump(): Promise<void> {
    while (this.pending && !this.closed) {
      const { percentComplete, body } = this.pending;
      this.pending = undefined;
      try {
        await this.send(percentComplete, PROGRESS_HEADERS, body);
      } catch (err) {
        this.log.warn(
          { err: (err as Error).message },
          'progress could not be published; a later update will replace it',
        );
      }
    }
  }
}
