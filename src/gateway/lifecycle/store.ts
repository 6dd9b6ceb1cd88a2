import type { KV, NatsConnection } from 'nats';
import { buckets } from '../../shared/protocol.js';
import { allKeys } from '../storage/kv.js';
import type { DeploymentRecord, VersionRecord } from './schema.js';

/**
 * Function versions and deployments, each a JSON record in its own KV bucket (no TTL), key =
 * the version id. Read through on every call rather than cached, so gateways sharing a NATS
 * see the same catalogue and a restarted one finds everything where it left it.
 */
export class LifecycleStore {
  private constructor(
    private readonly versionsKv: KV,
    private readonly deploymentsKv: KV,
  ) {}

  static async open(nc: NatsConnection, replicas: number): Promise<LifecycleStore> {
    const views = nc.jetstream().views;
    const [versions, deployments] = await Promise.all([
      views.kv(buckets.functionVersions, { history: 1, replicas }),
      views.kv(buckets.deployments, { history: 1, replicas }),
    ]);
    return new LifecycleStore(versions, deployments);
  }

  async putVersion(record: VersionRecord): Promise<void> {
    await this.versionsKv.put(record.versionId, JSON.stringify(record));
  }

  async version(versionId: string): Promise<VersionRecord | undefined> {
    return read<VersionRecord>(this.versionsKv, versionId);
  }

  async versions(): Promise<VersionRecord[]> {
    return readAll<VersionRecord>(this.versionsKv);
  }

  async deleteVersion(versionId: string): Promise<void> {
    await this.versionsKv.delete(versionId);
  }

  async putDeployment(record: DeploymentRecord): Promise<void> {
    await this.deploymentsKv.put(record.functionVersionId, JSON.stringify(record));
  }

  async deployment(versionId: string): Promise<DeploymentRecord | undefined> {
    return read<DeploymentRecord>(this.deploymentsKv, versionId);
  }

  async deployments(): Promise<DeploymentRecord[]> {
    return readAll<DeploymentRecord>(this.deploymentsKv);
  }

  async deleteDeployment(versionId: string): Promise<void> {
    await this.deploymentsKv.delete(versionId);
  }
}

async function read<T>(kv: KV, key: string): Promise<T | undefined> {
  const entry = await kv.get(key);
  return entry?.operation === 'PUT' ? entry.json<T>() : undefined;
}

async function readAll<T>(kv: KV): Promise<T[]> {
  const out: T[] = [];
  for (const key of await allKeys(kv)) {
    const value = await read<T>(kv, key);
    if (value) out.push(value);
  }
  return out;
}
