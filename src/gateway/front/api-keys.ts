import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { ConfigError } from '../../shared/env.js';

/**
 * The gateway's clients: one bearer key each, and the name a request is bound to. A request
 * created with one key is invisible to every other key (its status and queue position answer
 * 404), so clients sharing a gateway cannot take each other's results.
 */
export interface ApiClient {
  /** Becomes the invocation's auth subject (NVCF-SUB) and the owner of its requests. */
  name: string;
  /** SHA-256 of the key, hex: every comparison is between digests of equal length, in constant time. */
  digest: string;
}

const CLIENT_NAME = /^[A-Za-z0-9_.-]{1,64}$/;

function digestOf(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

function same(a: string, b: string): boolean {
  return timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}

/**
 * `GATEWAY_API_KEY` is one client named `api-key`; `GATEWAY_API_KEYS` is a comma-separated list
 * of `name:key` entries (or bare keys, named after a hash of the key so the name is stable
 * across restarts and says nothing about the key).
 */
export function parseApiClients(single: string | undefined, list: string | undefined): ApiClient[] {
  const clients: ApiClient[] = [];
  if (single) clients.push({ name: 'api-key', digest: digestOf(single) });
  for (const raw of (list ?? '').split(',')) {
    const entry = raw.trim();
    if (!entry) continue;
    const colon = entry.indexOf(':');
    const named = colon > 0 && CLIENT_NAME.test(entry.slice(0, colon));
    const key = named ? entry.slice(colon + 1).trim() : entry;
    if (!key) throw new ConfigError(`GATEWAY_API_KEYS: the entry for "${entry.slice(0, colon)}" has no key`);
    const digest = digestOf(key);
    const name = named ? entry.slice(0, colon) : `key-${digest.slice(0, 12)}`;
    if (clients.some((c) => same(c.digest, digest)))
      throw new ConfigError(`GATEWAY_API_KEYS: a key is listed twice (client "${name}")`);
    clients.push({ name, digest });
  }
  return clients;
}

/** Who is calling: undefined means no client's key was given (or a wrong one). */
export function clientOf(clients: readonly ApiClient[], authorization: string | undefined): ApiClient | undefined {
  const given = /^Bearer\s+(.+)$/i.exec(authorization ?? '')?.[1]?.trim();
  if (!given) return undefined;
  const digest = digestOf(given);
  let found: ApiClient | undefined;
  // Every key is compared, so the time taken does not say which one matched.
  for (const client of clients) if (same(client.digest, digest)) found ??= client;
  return found;
}

const callers = new WeakMap<IncomingMessage, ApiClient>();

/** Remembers which client a request came from, for the handlers after the key check. */
export function setCaller(req: IncomingMessage, client: ApiClient): void {
  callers.set(req, client);
}

/** The client that sent this request; undefined when the gateway runs without keys. */
export function callerOf(req: IncomingMessage): ApiClient | undefined {
  return callers.get(req);
}

/** A request belongs to the client that created it; one created without keys, to everyone. */
export function ownedBy(owner: string | undefined, req: IncomingMessage): boolean {
  return owner === undefined || owner === callerOf(req)?.name;
}
