#!/usr/bin/env node
// The OpenAI Node SDK calling the echo model through the gateway (`npm i openai`):
//   node examples/07-openai/client.mjs
// NVCF_GATEWAY_URL (default http://127.0.0.1:8090), NVCF_FUNCTION_ID (default: the id `dev` uses)
// and NVCF_API_KEY (only if the gateway asks for one) say where to go.
import OpenAI from 'openai';

const gateway = process.env.NVCF_GATEWAY_URL ?? 'http://127.0.0.1:8090';
const functionId = process.env.NVCF_FUNCTION_ID ?? 'de7e1000-0000-4000-8000-000000000001';

// Header routing: Node does not resolve `<functionId>.localhost`, so the function is named in
// the `function-id` header; against NVCF itself the base URL is
// https://<functionId>.invocation.api.nvcf.nvidia.com/v1 and no header is needed.
const client = new OpenAI({
  apiKey: process.env.NVCF_API_KEY ?? 'not-checked-without-GATEWAY_API_KEY',
  baseURL: `${gateway}/v1`,
  defaultHeaders: { 'function-id': functionId },
});

const models = await client.models.list();
console.log('models:', models.data.map((m) => m.id).join(', '));

const completion = await client.chat.completions.create({
  model: 'echo-1',
  messages: [{ role: 'user', content: 'Hello through NVCF' }],
});
console.log('reply:', completion.choices[0].message.content);

const stream = await client.chat.completions.create({
  model: 'echo-1',
  messages: [{ role: 'user', content: 'these words arrive one at a time' }],
  stream: true,
});
process.stdout.write('stream: ');
for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta?.content ?? '');
process.stdout.write('\n');
