import type { KV } from 'nats';

/** Every key of a bucket. Collected before use: awaiting inside nats.js's key iterator ends it early. */
export async function allKeys(kv: KV): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of await kv.keys()) keys.push(key);
  return keys;
}
