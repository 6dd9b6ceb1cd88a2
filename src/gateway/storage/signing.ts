import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { KV } from 'nats';

/** What a signed storage URL may be used for: one method, on one object, until it expires. */
export type ObjectKind = 'assets' | 'results' | 'bodies';
export interface SignedTarget {
  method: 'GET' | 'PUT';
  kind: ObjectKind;
  id: string;
}

const SECRET_KEY = 'signing-secret';

/**
 * HMAC-SHA256 over method, object and expiry. A URL therefore cannot be guessed, reused for
 * another object or method, or stretched past its expiry. The secret lives in the gateway's
 * KV bucket, so URLs survive a gateway restart and any gateway on the same NATS can check them.
 */
export class UrlSigner {
  constructor(
    private readonly secret: Buffer,
    private readonly baseUrl: () => string,
  ) {}

  /** Reads the shared secret, creating it if this is the first gateway on this NATS. */
  static async fromKv(kv: KV, baseUrl: () => string): Promise<UrlSigner> {
    const existing = await kv.get(SECRET_KEY);
    if (existing?.value.length) return new UrlSigner(Buffer.from(existing.value), baseUrl);
    try {
      await kv.create(SECRET_KEY, randomBytes(32));
    } catch {
      // Another gateway created it first; use theirs.
    }
    const stored = await kv.get(SECRET_KEY);
    return new UrlSigner(Buffer.from(stored!.value), baseUrl);
  }

  url(target: SignedTarget, ttlMs: number, now = Date.now()): string {
    const expires = Math.ceil((now + ttlMs) / 1000);
    return `${this.baseUrl()}${storagePath(target.kind, target.id)}?expires=${expires}&signature=${this.signature(target, expires)}`;
  }

  /** Undefined when the URL is good; otherwise why it is not, for the 403 detail. */
  check(target: SignedTarget, query: URLSearchParams, now = Date.now()): string | undefined {
    const expires = Number(query.get('expires'));
    const given = query.get('signature') ?? '';
    if (!Number.isInteger(expires) || !/^[0-9a-f]{64}$/.test(given)) return 'the URL is not signed';
    const expected = Buffer.from(this.signature(target, expires), 'hex');
    if (!timingSafeEqual(expected, Buffer.from(given, 'hex')))
      return 'the signature does not match this object and method';
    if (expires * 1000 < now) return 'the URL has expired';
    return undefined;
  }

  private signature(target: SignedTarget, expires: number): string {
    return createHmac('sha256', this.secret)
      .update(`${target.method}\n${target.kind}\n${target.id}\n${expires}`)
      .digest('hex');
  }
}

function storagePath(kind: ObjectKind, id: string): string {
  return `/v2/nvcf/storage/${kind}/${id}`;
}
