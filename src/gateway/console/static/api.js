// Calls to the gateway's own API, with the API key the user typed (kept for this tab only).
const KEY = 'nvcf-console-api-key';

export function apiKey() {
  return sessionStorage.getItem(KEY) ?? '';
}

export function setApiKey(value) {
  sessionStorage.setItem(KEY, value);
}

export function headers(extra = {}) {
  const key = apiKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

/** GET a JSON answer; undefined on 404, an Error carrying the problem's detail otherwise. */
export async function getJson(path) {
  const res = await fetch(path, { headers: headers({ Accept: 'application/json' }) });
  if (res.status === 404) return undefined;
  const text = await res.text();
  if (!res.ok) throw new Error(detailOf(text) ?? `${path} answered ${res.status}`);
  return JSON.parse(text);
}

export function detailOf(text) {
  try {
    return JSON.parse(text).detail;
  } catch {
    return undefined;
  }
}
