import type { KV, NatsConnection } from 'nats';
import { z } from 'zod';
import { UUID_PATTERN } from '../../shared/protocol.js';
import { allKeys } from './kv.js';
import { buckets } from '../../shared/protocol.js';

export const AssetRecord = z.object({
  assetId: z.string(),
  contentType: z.string(),
  description: z.string(),
  createdAt: z.number(),
  /** False until the bytes arrive on the upload URL; only uploaded assets can be referenced. */
  uploaded: z.boolean(),
  size: z.number().optional(),
});
export type AssetRecord = z.infer<typeof AssetRecord>;

/** Asset metadata, in a KV bucket whose TTL is the asset lifetime; the bytes live in the BlobStore. */
export class AssetCatalog {
  private constructor(private readonly kv: KV) {}

  static async open(nc: NatsConnection, ttlMs: number, replicas: number): Promise<AssetCatalog> {
    return new AssetCatalog(await nc.jetstream().views.kv(buckets.assetRecords, { history: 1, ttl: ttlMs, replicas }));
  }

  async get(assetId: string): Promise<AssetRecord | undefined> {
    if (!UUID_PATTERN.test(assetId)) return undefined;
    const entry = await this.kv.get(assetId.toLowerCase());
    if (!entry || entry.operation !== 'PUT') return undefined;
    const parsed = AssetRecord.safeParse(entry.json());
    return parsed.success ? parsed.data : undefined;
  }

  async put(record: AssetRecord): Promise<void> {
    await this.kv.put(record.assetId, JSON.stringify(record));
  }

  async delete(assetId: string): Promise<void> {
    await this.kv.delete(assetId.toLowerCase());
  }

  async list(): Promise<AssetRecord[]> {
    const records: AssetRecord[] = [];
    for (const key of await allKeys(this.kv)) {
      const record = await this.get(key);
      if (record) records.push(record);
    }
    return records.sort((a, b) => a.createdAt - b.createdAt);
  }
}
