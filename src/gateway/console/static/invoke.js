// One invocation as NVCF's clients see it: the POST, then status polls while the answer is 202,
// then the answer: inline, an event stream read as it arrives, or a 302 to a result zip.
import { detailOf, headers } from './api.js';

/** Short polls, so progress shows as it happens. */
const POLL_SECONDS = '1';

export async function invoke({ functionId, body, stream }, ui) {
  const accept = stream ? 'text/event-stream' : 'application/json';
  let res = await fetch(`/v2/nvcf/pexec/functions/${encodeURIComponent(functionId)}`, {
    method: 'POST',
    headers: headers({ 'Content-Type': 'application/json', Accept: accept, 'NVCF-POLL-SECONDS': POLL_SECONDS }),
    body,
  });
  for (;;) {
    const requestId = res.headers.get('NVCF-REQID');
    if (requestId) ui.requestId(requestId);
    ui.status(res.status, res.headers.get('NVCF-STATUS'));
    if (res.status !== 202) break;
    const percent = res.headers.get('NVCF-PERCENT-COMPLETE');
    const partial = await res.text();
    if (percent !== null || partial) ui.progress(Number(percent ?? 0), partial);
    if (!requestId) throw new Error('a 202 without NVCF-REQID: nothing to poll');
    res = await fetch(`/v2/nvcf/pexec/status/${requestId}`, {
      headers: headers({ Accept: accept, 'NVCF-POLL-SECONDS': POLL_SECONDS }),
    });
  }
  // fetch follows the 302 itself; the URL it landed on is the signed link to the zip.
  if (res.redirected) {
    ui.progress(100, '');
    ui.zip(res.url);
    await res.body?.cancel();
    return;
  }
  if ((res.headers.get('content-type') ?? '').startsWith('text/event-stream')) return readEvents(res, ui);
  const text = await res.text();
  if (!res.ok) return ui.error(detailOf(text) ?? (text || `HTTP ${res.status}`));
  ui.progress(100, '');
  ui.answer(text);
}

async function readEvents(res, ui) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let pending = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    pending += value;
    const events = pending.split('\n\n');
    pending = events.pop();
    for (const event of events)
      for (const line of event.split('\n')) if (line.startsWith('data:')) ui.token(line.slice(5).trim());
  }
  ui.progress(100, '');
}
