import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { fetch as undiciFetch, type Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NatsServer } from '../../src/dev/nats-server.js';
import { MODEL_ID, openAiEcho } from '../../examples/07-openai/server.mjs';
import { startWorker, workerEnv, type RunningWorker } from '../support/env.js';
import { startGateway, waitForStatus, type RunningGateway } from '../support/gateway.js';
import { loopbackAgent } from '../support/resolve.js';

describe('the OpenAI Node SDK against an OpenAI-compatible function through the gateway', () => {
  let nats: NatsServer;
  let container: Server;
  let worker: RunningWorker;
  let gw: RunningGateway;
  let agent: Agent;
  let fid: string;
  /** While set, the container writes each streamed word only once this resolves for it. */
  let gate: ((index: number) => Promise<void>) | undefined;
  const KEY = 'nvapi-sdk-client';

  /** An SDK client that reaches the function by its host name, `<functionId>.localhost`. */
  const byHost = () =>
    new OpenAI({
      apiKey: KEY,
      baseURL: `http://${fid}.localhost:${gw.gateway.port}/v1`,
      fetch: undiciFetch as unknown as typeof fetch,
      fetchOptions: { dispatcher: agent } as never,
      maxRetries: 0,
    });
  /** An SDK client that names the function in the `function-id` header. */
  const byHeader = () =>
    new OpenAI({ apiKey: KEY, baseURL: `${gw.url}/v1`, defaultHeaders: { 'function-id': fid }, maxRetries: 0 });

  beforeAll(async () => {
    nats = await NatsServer.start();
    const handle = openAiEcho({ pace: (index) => (gate ? gate(index) : Promise.resolve()) });
    container = createServer((req, res) => void handle(req, res).catch((err: Error) => res.destroy(err)));
    await new Promise<void>((resolve) => container.listen(0, '127.0.0.1', resolve));
    worker = await startWorker(
      await workerEnv(nats.url, (container.address() as AddressInfo).port, {
        INFERENCE_URL: '/v1/chat/completions',
        LOG_LEVEL: 'warn',
      }),
    );
    fid = worker.env.FUNCTION_ID!;
    gw = await startGateway(nats.url, { GATEWAY_API_KEYS: `sdk:${KEY}` });
    agent = loopbackAgent();
    await waitForStatus(gw.url, fid, worker.env.FUNCTION_VERSION_ID!, 'ACTIVE', 20_000, {
      authorization: `Bearer ${KEY}`,
    });
  });

  afterAll(async () => {
    await agent?.close();
    await gw?.stop();
    await worker?.stop();
    container?.closeAllConnections();
    await new Promise((resolve) => container?.close(resolve));
    await nats?.dispose();
  });

  for (const [form, client] of [
    ['host', byHost],
    ['header', byHeader],
  ] as const) {
    it(`lists the models through ${form} routing`, async () => {
      const models = await client().models.list();
      expect(models.data.map((m) => m.id)).toEqual([MODEL_ID]);
    });

    it(`answers a chat completion through ${form} routing`, async () => {
      const completion = await client().chat.completions.create({
        model: MODEL_ID,
        messages: [{ role: 'user', content: `hello by ${form}` }],
      });
      expect(completion.object).toBe('chat.completion');
      expect(completion.choices[0]!.message.content).toBe(`hello by ${form}`);
    });

    it(`streams a chat completion through ${form} routing word by word, each word its own event`, async () => {
      const words = ['one ', 'two ', 'three ', 'four ', 'five'];
      // The container writes word i only after the client has received word i-1: a gateway that
      // held the stream back until its end would never let the second word be written.
      let received = 0;
      const arrived: (() => void)[] = [];
      gate = (index) =>
        received >= index ? Promise.resolve() : new Promise<void>((resolve) => (arrived[index] = resolve));
      try {
        const stream = await client().chat.completions.create({
          model: MODEL_ID,
          messages: [{ role: 'user', content: words.join('') }],
          stream: true,
        });
        const pieces: string[] = [];
        for await (const chunk of stream) {
          const piece = chunk.choices[0]?.delta.content;
          if (!piece) continue;
          pieces.push(piece);
          received = pieces.length;
          arrived[received]?.();
        }
        expect(pieces).toEqual(words);
      } finally {
        gate = undefined;
      }
    });
  }
});
