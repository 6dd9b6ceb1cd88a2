import type { JetStreamClient, NatsConnection } from 'nats';
import { ProtocolClient } from '../../src/gateway/invocations/protocol-client.js';
import { ResultAssembler, type ResultEvent } from '../../src/gateway/invocations/result-assembler.js';
import { subjects, type OutputFile } from '../../src/shared/protocol.js';

/** Everything a worker published for one request, gathered up to its final response. */
export interface CollectedResult {
  status: number;
  headers: [string, string][];
  body: Buffer;
  streamed: boolean;
  error?: string;
  progress: { percentComplete: number; body: Buffer }[];
  /** Output files announced while the request ran. */
  outputs: OutputFile[];
  /** On a large result: what the zip holds and what was left out. */
  manifest?: NonNullable<Extract<ResultEvent, { type: 'final' }>['manifest']>;
  /** When each event arrived (ms since the call began): for tests about streaming order. */
  timeline: { type: ResultEvent['type']; at: number }[];
}

/** A problem+json body (what the worker answers for a failure) as an object. */
export const problemOf = (body: Buffer): Record<string, unknown> =>
  JSON.parse(body.toString()) as Record<string, unknown>;

/**
 * The caller's side of the protocol as a test drives it: the gateway's own client, plus a way to
 * wait for a whole result and a way to put bytes on the work queue that no real caller would.
 */
export class TestClient extends ProtocolClient {
  private readonly jetstream: JetStreamClient;

  constructor(nc: NatsConnection) {
    super(nc);
    this.jetstream = nc.jetstream();
  }

  /** Publishes raw bytes on a work subject, for tests of what a worker does with bad messages. */
  async publishRaw(functionVersionId: string, requestId: string, data: Uint8Array): Promise<void> {
    await this.jetstream.publish(subjects.work(functionVersionId, requestId), data);
  }

  /** Waits for the final response and returns it whole, with the progress seen on the way. */
  async result(replyTo: string, timeoutMs = 30_000): Promise<CollectedResult> {
    const started = Date.now();
    const signal = AbortSignal.timeout(timeoutMs);
    const assembler = new ResultAssembler();
    const collected: CollectedResult = {
      status: 0,
      headers: [],
      body: Buffer.alloc(0),
      streamed: false,
      progress: [],
      outputs: [],
      timeline: [],
    };
    const data: Uint8Array[] = [];
    for await (const frame of this.responses(replyTo, signal)) {
      for (const event of assembler.push(frame)) {
        collected.timeline.push({ type: event.type, at: Date.now() - started });
        if (event.type === 'progress')
          collected.progress.push({ percentComplete: event.percentComplete, body: Buffer.from(event.body) });
        if (event.type === 'output') collected.outputs.push(...event.files);
        if (event.type === 'data') data.push(event.bytes);
        if (event.type === 'final') {
          Object.assign(collected, {
            status: event.status,
            headers: event.headers,
            streamed: event.streamed,
            body: Buffer.concat([...data, event.body]),
          });
          if (event.error) collected.error = event.error;
          if (event.manifest) collected.manifest = event.manifest;
          return collected;
        }
      }
    }
    throw new Error(`no final response on ${replyTo} within ${timeoutMs} ms`);
  }
}
