import { DeliverPolicy, type JetStreamClient, type NatsConnection } from 'nats';
import {
  PROTOCOL_VERSION,
  decodeResponse,
  encodeFrame,
  streams,
  subjects,
  type Frame,
  type InvocationInput,
  type OutputFile,
  type ResponseMeta,
} from '../shared/protocol.js';
import { ResultAssembler, type ResultEvent } from './result-assembler.js';

export type InvocationRequest = Omit<InvocationInput, 'v' | 'replyTo'> & { replyTo?: string };

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

/**
 * The caller's side of the protocol: publish an invocation onto a function version's work queue
 * and read back what its worker publishes. The gateway and the tests both speak through this.
 */
export class ProtocolClient {
  private readonly js: JetStreamClient;

  constructor(private readonly nc: NatsConnection) {
    this.js = nc.jetstream();
  }

  /** Publishes the invocation durably; the request id doubles as the message id against double sends. */
  async invoke(request: InvocationRequest, body: Uint8Array = new Uint8Array(0)): Promise<string> {
    const replyTo = request.replyTo ?? subjects.replyTo(request.requestId);
    const meta = { v: PROTOCOL_VERSION, ...request, replyTo };
    await this.js.publish(subjects.work(request.functionVersionId, request.requestId), encodeFrame(meta, body), {
      msgID: request.requestId,
    });
    return replyTo;
  }

  /** Publishes raw bytes on a work subject, for tests of what a worker does with bad messages. */
  async publishRaw(functionVersionId: string, requestId: string, data: Uint8Array): Promise<void> {
    await this.js.publish(subjects.work(functionVersionId, requestId), data);
  }

  cancel(functionVersionId: string, requestId: string): void {
    this.nc.publish(subjects.cancel(functionVersionId), requestId);
  }

  /**
   * The response messages of one request, in stream order, until `signal` aborts: every one from
   * the first, or with `latest`, only the last of each subject that exists so far (the latest
   * progress, but every chunk) and then everything new, so a poll late in a long job does not
   * replay its whole progress history. A message that does not decode (say, a kind from a newer
   * protocol) throws, unless `onUndecodable` is given: then it is reported there and skipped.
   */
  async *responses(
    replyTo: string,
    signal?: AbortSignal,
    onUndecodable?: (err: Error) => void,
    latest = false,
  ): AsyncGenerator<Frame<ResponseMeta>> {
    const filterSubjects = subjects.responsesOf(replyTo);
    const consumer = await this.js.consumers.get(
      streams.results,
      latest ? { filterSubjects, deliver_policy: DeliverPolicy.LastPerSubject } : { filterSubjects },
    );
    const messages = await consumer.consume();
    const iterator = messages[Symbol.asyncIterator]();
    // Stopping a consumer does not always end a pending next(), so the abort ends it here.
    const aborted = new Promise<IteratorResult<never>>((resolve) => {
      if (signal?.aborted) resolve({ done: true, value: undefined });
      signal?.addEventListener('abort', () => resolve({ done: true, value: undefined }), { once: true });
    });
    try {
      for (;;) {
        const next = await Promise.race([iterator.next(), aborted]);
        if (next.done) return;
        let frame: Frame<ResponseMeta>;
        try {
          frame = decodeResponse(next.value.data);
        } catch (err) {
          if (!onUndecodable) throw err;
          onUndecodable(err as Error);
          continue;
        }
        yield frame;
      }
    } finally {
      messages.stop();
    }
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
