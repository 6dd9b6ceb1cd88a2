#!/usr/bin/env node
// An OpenAI-compatible inference container with no GPU: its "model" echoes the last user
// message back, word by word. It serves the two endpoints the OpenAI SDKs use most, so a
// function written for vLLM or NIM can be tried through the gateway with the SDK it will use.
//
//   PORT=8000 node examples/07-openai/server.mjs
//   GET  /v1/models                             -> {object: "list", data: [{id: "echo-1", …}]}
//   POST /v1/chat/completions                   -> a chat.completion echoing the last user message
//   POST /v1/chat/completions  {"stream": true} -> chat.completion.chunk events, one word each, then [DONE]
//   GET  /v1/health/ready, /v2/health/ready     -> 200
//
// TOKEN_DELAY_MS (default 100) spaces the streamed words in time, as a real model's tokens are.
import { createServer } from 'node:http';
import { pathToFileURL } from 'node:url';

export const MODEL_ID = 'echo-1';
const created = Math.floor(Date.now() / 1000);

function json(res, status, value) {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function openAiError(res, status, message, type = 'invalid_request_error') {
  json(res, status, { error: { message, type, param: null, code: null } });
}

/** The reply: the last user message's text, or a greeting when there is none. */
function replyTo(messages) {
  const last = [...(Array.isArray(messages) ? messages : [])].reverse().find((m) => m?.role === 'user');
  const content = last?.content;
  const text = Array.isArray(content)
    ? content.map((part) => (part?.type === 'text' ? part.text : '')).join(' ')
    : String(content ?? '');
  return text.trim() || 'Hello from the echo model.';
}

/** Words with their following space, so the streamed pieces join back into the reply. */
function tokensOf(text) {
  return text.match(/\S+\s*/g) ?? [];
}

/**
 * The request handler. `pace(index)` is awaited before every streamed word after the first
 * (default: TOKEN_DELAY_MS); a test can pass its own to release the words one at a time.
 */
export function openAiEcho({ pace } = {}) {
  const delay = Number(process.env.TOKEN_DELAY_MS ?? 100);
  const wait = pace ?? (() => new Promise((resolve) => setTimeout(resolve, delay)));
  return async (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/v1/health/ready' || path === '/v2/health/ready') return void res.writeHead(200).end();
    if (req.method === 'GET' && path === '/v1/models')
      return json(res, 200, {
        object: 'list',
        data: [{ id: MODEL_ID, object: 'model', created, owned_by: 'nvcf-sidecar' }],
      });
    if (path !== '/v1/chat/completions') return openAiError(res, 404, `no route ${req.method} ${path}`);
    if (req.method !== 'POST') return openAiError(res, 405, `use POST on ${path}`);
    const parts = [];
    for await (const chunk of req) parts.push(chunk);
    let request;
    try {
      request = JSON.parse(Buffer.concat(parts).toString('utf8'));
    } catch {
      return openAiError(res, 400, 'the body is not JSON');
    }
    const id = `chatcmpl-${String(req.headers['nvcf-reqid'] ?? Date.now())}`;
    const model = typeof request.model === 'string' ? request.model : MODEL_ID;
    const reply = replyTo(request.messages);
    const tokens = tokensOf(reply);
    const usage = { prompt_tokens: tokens.length, completion_tokens: tokens.length, total_tokens: 2 * tokens.length };
    if (!request.stream)
      return json(res, 200, {
        id,
        object: 'chat.completion',
        created: Math.floor(Date.now() / 1000),
        model,
        choices: [{ index: 0, message: { role: 'assistant', content: reply }, finish_reason: 'stop' }],
        usage,
      });

    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
    const send = (delta, finish = null) =>
      res.write(
        `data: ${JSON.stringify({
          id,
          object: 'chat.completion.chunk',
          created: Math.floor(Date.now() / 1000),
          model,
          choices: [{ index: 0, delta, finish_reason: finish }],
        })}\n\n`,
      );
    for (let i = 0; i < tokens.length; i++) {
      if (res.destroyed) return;
      if (i > 0) await wait(i);
      send(i === 0 ? { role: 'assistant', content: tokens[i] } : { content: tokens[i] });
    }
    send({}, 'stop');
    res.end('data: [DONE]\n\n');
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const host = process.env.HOST ?? '127.0.0.1';
  const port = Number(process.env.PORT ?? 8000);
  const handle = openAiEcho();
  const server = createServer((req, res) => {
    handle(req, res).catch((err) => res.destroy(err));
  });
  server.listen(port, host, () => {
    // The first line names the real port, so a launcher can ask for port 0.
    console.log(`openai echo container listening on http://${host}:${server.address().port}`);
  });
  for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => server.close(() => process.exit(0)));
}
