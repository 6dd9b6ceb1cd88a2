import { connect } from 'nats';
import { Pool, type Dispatcher } from 'undici';
import { ensureResults, ensureWorkQueue } from '../src/shared/nats.js';
import { messageIds, streams, subjects } from '../src/shared/protocol.js';
import { encodeFrame } from '../src/shared/frame-codec.js';

/**
 * Scenario 1(b), the floor of this design: pull from the work queue, call the container with
 * undici, publish the result durably, ack. Nothing else: no validation, no directories, no
 * leases, no logging. It answers in the protocol's frame format so the same client reads it.
 * Configured by NATS_URL, FUNCTION_VERSION_ID, CONTAINER_ORIGIN and CONCURRENCY.
 */
const env = process.env;
const concurrency = Number(env.CONCURRENCY ?? 64);
const nc = await connect({ servers: env.NATS_URL! });
const js = nc.jetstream();
const jsm = await nc.jetstreamManager();
const version = env.FUNCTION_VERSION_ID!;
await ensureWorkQueue(jsm, version, { ackWaitMs: 30_000, maxDeliver: 5 });
await ensureResults(jsm, 3_600_000);
const pool = new Pool(env.CONTAINER_ORIGIN!, { connections: concurrency });
const consumer = await js.consumers.get(streams.work(version), streams.workConsumer);
const messages = await consumer.consume({ max_messages: concurrency });
const decoder = new TextDecoder();
process.stdout.write(`${JSON.stringify({ msg: 'forwarding' })}\n`);

interface Meta {
  requestId: string;
  replyTo: string;
  method: Dispatcher.HttpMethod;
  path: string;
  headers: [string, string][];
}

for await (const msg of messages) {
  void (async () => {
    const data = msg.data;
    const end = data.indexOf(0x0a);
    const meta = JSON.parse(decoder.decode(data.subarray(0, end))) as Meta;
    const answer = await pool.request({
      method: meta.method,
      path: meta.path,
      headers: meta.headers.flat(),
      body: data.subarray(end + 1),
    });
    const body = new Uint8Array(await answer.body.arrayBuffer());
    const final = {
      v: 1,
      requestId: meta.requestId,
      workerId: 'bare',
      attempt: 1,
      kind: 'final',
      status: answer.statusCode,
      headers: [],
      chunks: 0,
      streamed: false,
    };
    await js.publish(subjects.response(meta.replyTo, 'final'), encodeFrame(final, body), {
      msgID: messageIds.final(meta.requestId),
    });
    msg.ack();
  })().catch((err: Error) => {
    process.stderr.write(`bare forwarder: ${err.message}\n`);
    msg.nak();
  });
}
