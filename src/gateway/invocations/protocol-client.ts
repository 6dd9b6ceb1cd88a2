import { DeliverPolicy, type JetStreamClient, type NatsConnection } from 'nats';
import {
  PROTOCOL_VERSION,
  messageIds,
  streams,
  subjects,
  type InvocationInput,
  type ResponseMeta,
} from '../../shared/protocol.js';
import { decodeResponse, encodeFrame, type Frame } from '../../shared/frame-codec.js';

export type InvocationRequest = Omit<InvocationInput, 'v' | 'replyTo'> & { replyTo?: string };

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
      msgID: messageIds.work(request.requestId),
    });
    return replyTo;
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
}
