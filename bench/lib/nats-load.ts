import { randomUUID } from 'node:crypto';
import { connect, type NatsConnection, type JetStreamClient, type Subscription } from 'nats';
import { messageIds, subjects, type ResponseMeta } from '../../src/shared/protocol.js';
import { encodeFrame } from '../../src/shared/frame-codec.js';

const decoder = new TextDecoder();

export interface Delivered {
  meta: ResponseMeta;
  body: Uint8Array;
  at: number;
}

/**
 * The caller's side of scenario 1: publishes invocations straight onto a work queue and hears
 * every response on a core-NATS subscription (JetStream-stored messages reach core subscribers
 * too), so waiting for a result costs no consumer per request.
 */
export class NatsCaller {
  private readonly js: JetStreamClient;
  private readonly sub: Subscription;
  private readonly waiting = new Map<string, (d: Delivered) => void>();
  private readonly prefix = `nvcf.rs.bench${randomUUID().slice(0, 8)}`;

  private constructor(readonly nc: NatsConnection) {
    this.js = nc.jetstream();
    this.sub = nc.subscribe(`${this.prefix}.>`, {
      callback: (_err, msg) => {
        const requestId = msg.subject.split('.')[3]!;
        const listener = this.waiting.get(requestId);
        if (!listener) return;
        // Plain JSON, not the schema: the caller must cost as little as it can, it shares the CPU.
        const data = msg.data;
        const end = data.indexOf(0x0a);
        const meta = JSON.parse(decoder.decode(data.subarray(0, end))) as ResponseMeta;
        listener({ meta, body: data.subarray(end + 1), at: performance.timeOrigin + performance.now() });
      },
    });
  }

  static async connect(url: string): Promise<NatsCaller> {
    return new NatsCaller(await connect({ servers: url }));
  }

  /**
   * Publishes one invocation and calls `onResponse` for every response of it until the final,
   * with which the promise resolves.
   */
  async invoke(
    functionId: string,
    functionVersionId: string,
    options: {
      path?: string;
      headers?: [string, string][];
      body?: Uint8Array;
      largeResult?: { uploadUrl: string; downloadUrl: string };
      requestId?: string;
    },
    onResponse?: (d: Delivered) => void,
  ): Promise<Delivered> {
    const requestId = options.requestId ?? randomUUID();
    const replyTo = `${this.prefix}.${requestId}`;
    const final = new Promise<Delivered>((resolve) =>
      this.waiting.set(requestId, (d) => {
        onResponse?.(d);
        if (d.meta.kind === 'final') {
          this.waiting.delete(requestId);
          resolve(d);
        }
      }),
    );
    const meta = {
      v: 1,
      requestId,
      functionId,
      functionVersionId,
      method: 'POST',
      path: options.path ?? '/echo',
      headers: options.headers ?? [['Content-Type', 'application/json']],
      requestTime: Date.now(),
      pollSeconds: 60,
      replyTo,
      ...(options.largeResult ? { largeResult: options.largeResult } : {}),
    };
    await this.js.publish(subjects.work(functionVersionId, requestId), encodeFrame(meta, options.body), {
      msgID: messageIds.work(requestId),
    });
    return final;
  }

  async close(): Promise<void> {
    this.sub.unsubscribe();
    await this.nc.drain();
  }
}
