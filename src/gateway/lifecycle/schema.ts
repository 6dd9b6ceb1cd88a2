import { isAbsolute } from 'node:path';
import { z } from 'zod';
import { UUID_PATTERN } from '../../shared/protocol.js';

/**
 * Request bodies of the lifecycle API, in NVCF's field names, and the records kept for them.
 * `localCommand` is the harness's own addition (documented in docs/harness.md): NVCF runs only
 * images, a laptop may have no container engine.
 */

const name = z
  .string({ error: 'is required' })
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/,
    'must start with a letter or digit and hold only letters, digits, "_" and "-" (at most 128)',
  );
const path = z
  .string()
  .min(1)
  .max(1024)
  .regex(/^[^\s\0]*$/, 'must not contain spaces or control characters')
  // NVCF's own examples write model URLs without the leading slash.
  .transform((p) => (p.startsWith('/') ? p : `/${p}`));
const port = z.number().int().min(1).max(65535);
const uuid = z
  .string()
  .regex(UUID_PATTERN, 'must be a UUID')
  .transform((u) => u.toLowerCase());

/** ISO 8601 durations as NVCF writes health timeouts (`PT10S`), or plain seconds. */
const isoSeconds = z
  .union([
    z.number().positive().max(3600),
    z.string().regex(/^PT(\d+H)?(\d+M)?(\d+(\.\d+)?S)?$/i, 'must be an ISO 8601 duration such as PT10S'),
  ])
  .transform((v) => {
    if (typeof v === 'number') return v;
    const [, h = '0', m = '0', s = '0'] = /^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$/i.exec(v)!;
    return Number(h) * 3600 + Number(m) * 60 + Number(s);
  });

const Health = z
  .object({
    protocol: z.enum(['HTTP', 'http'], { error: 'only HTTP health checks run in the harness' }).default('HTTP'),
    uri: path.default('/v2/health/ready'),
    port: port.optional(),
    timeout: isoSeconds.default(10),
    expectedStatusCode: z.number().int().min(100).max(599).default(200),
  })
  .strip();

const EnvVar = z.object({
  key: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name'),
  value: z.string().max(32 * 1024),
});

const Model = z.object({ name: z.string().min(1).max(256), version: z.string().max(128), uri: z.string().max(2048) });

export const FunctionSpec = z
  .object({
    name,
    inferenceUrl: path,
    inferencePort: port.default(8000),
    healthUri: path.optional(),
    health: Health.optional(),
    containerImage: z.string().min(1).max(1024).optional(),
    /** A string, as NVCF takes it; split on whitespace for `docker run`. */
    containerArgs: z.string().max(8192).optional(),
    containerEnvironment: z.array(EnvVar).max(256).default([]),
    models: z.array(Model).max(64).optional(),
    apiBodyFormat: z.enum(['CUSTOM', 'PREDICT_V2']).default('CUSTOM'),
    description: z.string().max(4096).default(''),
    tags: z.array(z.string().max(128)).max(64).default([]),
    helmChart: z.string().optional(),
    helmChartServiceName: z.string().optional(),
    /** Harness only: argv of a process that stands for the container, run with INFERENCE_PORT set. */
    localCommand: z.array(z.string().min(1).max(4096)).min(1).max(256).optional(),
    /** Harness only: a container already running at this http:// origin; only workers are started for it. */
    localEndpoint: z.url({ protocol: /^http$/ }).optional(),
    /**
     * Harness only: an absolute folder the container also sees at the same path (mounted with
     * `-v DIR:DIR`); each instance's asset and output folders are made in it and kept.
     */
    localSharedDir: z
      .string()
      .max(1024)
      .refine((d) => isAbsolute(d) && !d.includes('\0'), 'must be an absolute path')
      .optional(),
    /** Harness only: the function id to register under instead of a new one (so a script's ids stay fixed). */
    id: uuid.optional(),
    /** Harness only: the version id to register under instead of a new one. */
    versionId: uuid.optional(),
  })
  .strip()
  .superRefine((spec, ctx) => {
    if (spec.helmChart !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['helmChart'],
        message: 'Helm chart functions are not supported by the harness',
      });
    }
    if (spec.localCommand && spec.localEndpoint) {
      ctx.addIssue({ code: 'custom', path: ['localEndpoint'], message: 'cannot be given with localCommand' });
    }
    if (!spec.containerImage && !spec.models && !spec.localCommand && !spec.localEndpoint) {
      ctx.addIssue({
        code: 'custom',
        path: ['containerImage'],
        message: 'a function needs containerImage, models or (harness only) localCommand or localEndpoint',
      });
    }
  });
export type FunctionSpec = z.output<typeof FunctionSpec>;

/** A registered function version, as stored in the `nvcf_function_versions` bucket. */
export interface VersionRecord extends Omit<FunctionSpec, 'health' | 'healthUri' | 'id' | 'versionId'> {
  id: string;
  versionId: string;
  ncaId: string;
  health: z.output<typeof Health>;
  createdAt: string;
}

export function toRecord(spec: FunctionSpec, id: string, versionId: string, ncaId: string): VersionRecord {
  const { health, healthUri, helmChart: _h, helmChartServiceName: _s, id: _i, versionId: _v, ...rest } = spec;
  return {
    ...rest,
    id,
    versionId,
    ncaId,
    health: health ?? Health.parse({ uri: healthUri ?? '/v2/health/ready' }),
    createdAt: new Date().toISOString(),
  };
}

export const DeploymentSpecification = z
  .object({
    gpu: z.string().min(1).max(128),
    backend: z.string().max(128).optional(),
    instanceType: z.string().max(128).optional(),
    minInstances: z.number().int().min(0).max(16),
    maxInstances: z.number().int().min(1).max(16),
    maxRequestConcurrency: z.number().int().min(1).max(16384).default(1),
    configuration: z.unknown().optional(),
  })
  .strip()
  .refine((s) => s.maxInstances >= s.minInstances, { message: 'maxInstances must be at least minInstances' });
export type DeploymentSpecification = z.output<typeof DeploymentSpecification>;

export const DeploymentBody = z.object({
  deploymentSpecifications: z.array(DeploymentSpecification).min(1).max(8),
});

/** A deployment, as stored in the `nvcf_deployments` bucket: what should run, and who runs it. */
export interface DeploymentRecord {
  functionId: string;
  functionVersionId: string;
  ncaId: string;
  deploymentSpecifications: DeploymentSpecification[];
  /** The gateway whose controller starts the instances. */
  gatewayId: string;
  createdAt: string;
  updatedAt: string;
}

/** Instances the harness runs for a deployment: it does not autoscale, so the sum of minInstances, at least one. */
export function instanceCount(specs: readonly DeploymentSpecification[]): number {
  return Math.max(
    1,
    specs.reduce((n, s) => n + s.minInstances, 0),
  );
}

export function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || 'body'} ${i.message}`).join('; ');
}
