import OpenAI from 'openai';
import { fetch as undiciFetch } from 'undici';
import { afterAll, describe, expect, it } from 'vitest';
import { MODEL_ID, openAiEcho } from '../../examples/07-openai/server.mjs';
import { TestServer } from '../support/http.js';
import { loopbackAgent } from '../support/resolve.js';
import { useRig } from '../support/rig.js';

describe('the OpenAI Node SDK against an OpenAI-compatible function through the gateway', () => {
  /** While set, the container writes each streamed word only once this resolves for it. */
  let gate: ((index: number) => Promise<void>) | undefined;
  const KEY = 'nvapi-sdk-client';
  /** The OpenAI example's handler, as the function's container. */
  const startExample = async () => {
    const handle = openAiEcho({ pace: (index) => (gate ? gate(index) : Promise.resolve()) });
    const server = await TestServer.start((req, res) => void handle(req, res).catch((err: Error) => res.destroy(err)));
    return { port: server.port, close: () => server.close() };
  };
  const rig = useRig({
    container: { start: startExample },
    worker: { env: { INFERENCE_URL: '/v1/chat/completions', LOG_LEVEL: 'warn' } },
    gateway: { env: { GATEWAY_API_KEYS: `sdk:${KEY}` }, awaitStatus: 'ACTIVE', apiKey: KEY },
  });
  const agent = loopbackAgent();
  afterAll(() => agent.close());
  const fid = () => rig.worker.env.FUNCTION_ID!;

  /** An SDK client that reaches the function by its host name, `<functionId>.localhost`. */
  const byHost = () =>
    new OpenAI({
      apiKey: KEY,
      baseURL: `http://${fid()}.localhost:${rig.gateway.gateway.port}/v1`,
      fetch: undiciFetch as unknown as typeof fetch,
      fetchOptions: { dispatcher: agent } as never,
      maxRetries: 0,
    });
  /** An SDK client that names the function in the `function-id` header. */
  const byHeader = () =>
    new OpenAI({
      apiKey: KEY,
      baseURL: `${rig.gateway.url}/v1`,
      defaultHeaders: { 'function-id': fid() },
      maxRetries: 0,
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
