import { Readable } from 'node:stream';
import { StorageType, nanos, type NatsConnection, type ObjectStore } from 'nats';
import type { ObjectKind } from './signing.js';
import { buckets } from '../../shared/protocol.js';

export interface StoredObject {
  size: number;
  contentType: string;
  body: Readable;
}

/**
 * Where the gateway keeps bytes: assets, large results and request bodies too big for a frame.
 * Small on purpose, so that an S3-compatible store can stand in for the default one.
 */
export interface BlobStore {
  /** Stores (or replaces) the object; resolves with its size once every byte is stored. */
  put(kind: ObjectKind, id: string, body: Readable, contentType: string): Promise<number>;
  get(kind: ObjectKind, id: string): Promise<StoredObject | undefined>;
  has(kind: ObjectKind, id: string): Promise<boolean>;
  delete(kind: ObjectKind, id: string): Promise<void>;
}

/**
 * The default store: one JetStream object store per kind, so the harness needs nothing but
 * NATS, objects survive a gateway restart, and each kind ages out on its own TTL.
 */
export class NatsBlobStore implements BlobStore {
  private constructor(private readonly buckets: Record<ObjectKind, ObjectStore>) {}

  static async open(nc: NatsConnection, ttlMs: Record<ObjectKind, number>, replicas: number): Promise<NatsBlobStore> {
    const views = nc.jetstream().views;
    const open = (kind: ObjectKind) =>
      views.os(buckets.objects(kind), { storage: StorageType.File, ttl: nanos(ttlMs[kind]), replicas });
    const [assets, results, bodies] = await Promise.all([open('assets'), open('results'), open('bodies')]);
    return new NatsBlobStore({ assets, results, bodies });
  }

  async put(kind: ObjectKind, id: string, body: Readable, contentType: string): Promise<number> {
    const info = await this.buckets[kind].put({ name: id, description: contentType }, Readable.toWeb(body));
    return info.size;
  }

  async get(kind: ObjectKind, id: string): Promise<StoredObject | undefined> {
    const result = await this.buckets[kind].get(id);
    if (!result) return undefined;
    const body = Readable.fromWeb(result.data);
    // A chunk lost in the store surfaces here, after the stream: fail the body rather than truncate it silently.
    void result.error.then((err) => err && body.destroy(err));
    return { size: result.info.size, contentType: result.info.description || 'application/octet-stream', body };
  }

  async has(kind: ObjectKind, id: string): Promise<boolean> {
    const info = await this.buckets[kind].info(id);
    return Boolean(info && !info.deleted);
  }

  async delete(kind: ObjectKind, id: string): Promise<void> {
    await this.buckets[kind].delete(id).catch(() => undefined);
  }
}
