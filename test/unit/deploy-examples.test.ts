import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadGatewayConfig, readGatewayArgs } from '../../src/gateway/config.js';
import { parseDurationMs } from '../../src/shared/env.js';
import { loadWorkerConfig } from '../../src/worker/config.js';
import { composeConfig, readRepoFile, repoPath, yamlDocuments, type Loose } from '../support/manifests.js';

const K8S = 'examples/05-kubernetes';
const COMPOSE = 'examples/06-docker-compose/docker-compose.yml';
/** A duration as the worker reads it ("100s", "2m"), in seconds; compose may print "1m50s". */
function seconds(text: string): number {
  const ms = parseDurationMs(
    text.replace(/^(\d+)m(\d+)s$/, (_m, m: string, s: string) => `${Number(m) * 60 + Number(s)}s`),
  );
  if (ms === undefined) throw new Error(`"${text}" is not a duration`);
  return ms / 1000;
}

/** Time a worker needs after its drain grace: the NATS drain, the last publish, exiting. */
const EXIT_MARGIN_S = 10;

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { fieldRef?: { fieldPath: string } };
}

/** The container's environment as the kubelet would set it, a pod name standing in for fieldRefs. */
function podEnv(container: { env?: EnvVar[] }): Record<string, string> {
  return Object.fromEntries(
    (container.env ?? []).map((e) => [e.name, e.value ?? (e.valueFrom?.fieldRef ? 'echo-function-7d9c-x2' : '')]),
  );
}

describe('examples/05-kubernetes', () => {
  const kustomization = yamlDocuments(`${K8S}/kustomization.yaml`)[0]!;
  const objects = (kustomization.resources as string[]).flatMap((file) => yamlDocuments(`${K8S}/${file}`));
  const find = (kind: string, name: string) => {
    const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
    if (!found) throw new Error(`no ${kind} ${name} in ${K8S}`);
    return found;
  };
  const podSpec = (name: string) => find('Deployment', name).spec.template.spec;
  const fn = podSpec('echo-function');
  const container = (name: string) => fn.containers.find((c: { name: string }) => c.name === name);
  const sidecar = container('nvcf-sidecar');
  const inference = container('inference');

  it('lists only files that exist, each of them parsing as Kubernetes objects', () => {
    for (const file of kustomization.resources as string[])
      expect(existsSync(repoPath(`${K8S}/${file}`)), file).toBe(true);
    for (const object of objects) {
      expect(object.apiVersion, JSON.stringify(object.metadata)).toBeTruthy();
      expect(object.kind).toBeTruthy();
      expect(object.metadata.name).toMatch(/^[a-z0-9-]+$/);
    }
  });

  it("runs the inference container's code from a ConfigMap that exists and holds examples/01-echo", () => {
    const volumes = new Map<string, Loose>(fn.volumes.map((v: { name: string }) => [v.name, v]));
    for (const c of fn.containers)
      for (const mount of c.volumeMounts ?? [])
        expect(volumes.has(mount.name), `${c.name} mounts ${mount.name}`).toBe(true);
    const code = inference.volumeMounts.find((m: { mountPath: string }) => m.mountPath === '/app');
    const source = volumes.get(code.name).configMap;
    const configMap = find('ConfigMap', source.name);
    for (const item of source.items) expect(Object.keys(configMap.data)).toContain(item.key);
    // The command names a file the mount provides.
    expect(inference.command).toEqual(['node', `/app/${source.items[0].path}`]);
    expect(configMap.data[source.items[0].key]).toBe(readRepoFile('examples/01-echo/server.mjs'));
  });

  it('shares /var/inf through an emptyDir and probes the sidecar, whose environment is a valid worker', () => {
    const shared = fn.volumes.find(
      (v: { name: string; emptyDir?: object }) => v.emptyDir && v.name === 'inference-data',
    );
    expect(shared).toBeDefined();
    for (const c of [sidecar, inference])
      expect(c.volumeMounts).toContainEqual({ name: 'inference-data', mountPath: '/var/inf' });
    expect(sidecar.readinessProbe.httpGet.path).toBe('/v1/health/ready');
    expect(sidecar.livenessProbe.httpGet.path).toBe('/v1/health/live');
    const config = loadWorkerConfig(podEnv(sidecar));
    expect(config.assetDir.startsWith('/var/inf/')).toBe(true);
    expect(config.inference.origin).toBe(
      `http://127.0.0.1:${inference.env.find((e: EnvVar) => e.name === 'PORT').value}`,
    );
  });

  it('keeps the inference container serving until the sidecar has drained, within the pod grace period', () => {
    const drainS = seconds(podEnv(sidecar).DRAIN_GRACE!);
    const hook = inference.lifecycle.preStop.exec.command.join(' ');
    // The hook waits on the sidecar's liveness endpoint, on its health port, inside the pod.
    const port = sidecar.ports.find((p: { name: string }) => p.name === 'health').containerPort;
    expect(hook).toContain(`http://127.0.0.1:${port}/v1/health/live`);
    const hookCapS = Number(/-lt (\d+)/.exec(hook)?.[1]);
    expect(hookCapS).toBeGreaterThanOrEqual(drainS + EXIT_MARGIN_S);
    expect(fn.terminationGracePeriodSeconds).toBeGreaterThan(hookCapS);
    expect(sidecar.lifecycle?.preStop).toBeUndefined();
  });

  it('names the NATS and gateway Services the configurations point at', () => {
    const natsPort = find('Service', 'nats').spec.ports[0].port;
    const gatewayService = find('Service', 'nvcf-gateway');
    const gateway = podSpec('nvcf-gateway').containers[0];
    const gatewayConfig = loadGatewayConfig(podEnv(gateway), readGatewayArgs(gateway.args.slice(1)).flags);
    for (const env of [podEnv(sidecar), podEnv(gateway)]) expect(env.NATS_URL).toBe(`nats://nats:${natsPort}`);
    expect(gatewayConfig.publicUrl).toBe(`http://nvcf-gateway:${gatewayService.spec.ports[0].port}`);
    expect(gatewayConfig.host).toBe('0.0.0.0');
    expect(find('StatefulSet', 'nats').spec.template.spec.containers[0].args).toContain('--jetstream');
  });

  it('pins every image, the sidecar one to the registry placeholder the kustomization and README replace', () => {
    const pods = objects.filter((o) => o.spec?.template).map((o) => o.spec.template.spec);
    for (const c of pods.flatMap((p) => p.containers)) expect(c.image, c.name).toMatch(/:[\w.-]+$/);
    expect(sidecar.image).toBe('registry.example.com/nvcf-sidecar:0.1.0');
    expect(kustomization.images[0].name).toBe('registry.example.com/nvcf-sidecar');
    expect(readRepoFile(`${K8S}/README.md`)).toContain('registry.example.com');
  });

  it('gives every container resources and a locked-down security context', () => {
    const pods = objects.filter((o) => o.spec?.template).map((o) => o.spec.template.spec);
    for (const pod of pods) {
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      for (const c of pod.containers) {
        expect(c.resources.requests, c.name).toBeDefined();
        expect(c.resources.limits.memory, c.name).toBeDefined();
        expect(c.securityContext).toMatchObject({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        });
      }
    }
    // With a read-only root, the sidecar's scratch space must be a volume.
    const spool = podEnv(sidecar).SPOOL_DIR!;
    expect(sidecar.volumeMounts.some((m: { mountPath: string }) => spool.startsWith(`${m.mountPath}/`))).toBe(true);
  });

  it("announces the sidecar's and the gateway's metrics ports to Prometheus", () => {
    const annotations = find('Deployment', 'echo-function').spec.template.metadata.annotations;
    expect(annotations['prometheus.io/scrape']).toBe('true');
    expect(Number(annotations['prometheus.io/port'])).toBe(loadWorkerConfig(podEnv(sidecar)).metricsPort);
    const gateway = find('Deployment', 'nvcf-gateway').spec.template;
    expect(gateway.metadata.annotations['prometheus.io/port']).toBe(podEnv(gateway.spec.containers[0]).GATEWAY_PORT);
  });
});

describe('examples/06-docker-compose', () => {
  const { config } = composeConfig(COMPOSE);
  const services = config.services as Record<string, Loose>;
  const env = (service: string) =>
    Object.fromEntries(
      Object.entries(services[service].environment ?? {}).map(([k, v]) => [k, v === null ? '' : String(v as string)]),
    );

  it('builds the image once and runs it for both the sidecar and the gateway', () => {
    const built = Object.entries(services).filter(([, s]) => s.build);
    expect(built.map(([name]) => name)).toEqual(['sidecar']);
    expect(services.gateway.image).toBe(services.sidecar.image);
    expect(services.gateway.build).toBeUndefined();
  });

  it('configures a valid worker and gateway, on the NATS service', () => {
    const worker = loadWorkerConfig(env('sidecar'));
    const gateway = loadGatewayConfig(env('gateway'));
    expect(worker.inference.origin).toBe(`http://inference:${env('inference').PORT}`);
    expect(env('sidecar').NATS_URL).toBe('nats://nats:4222');
    expect(gateway.port).toBe(8090);
  });

  it('hands out signed URLs on a name both the host and the containers reach', () => {
    const publicUrl = new URL(loadGatewayConfig(env('gateway')).publicUrl!);
    expect(publicUrl.hostname).toBe('host.docker.internal');
    // Containers that fetch or upload through signed URLs resolve the name to the host...
    for (const service of ['sidecar', 'gateway'])
      expect(services[service].extra_hosts.join(' '), service).toMatch(/host\.docker\.internal[:=]host-gateway/);
    // ...where the gateway's port is published on the port the URL names, on every interface.
    const published = services.gateway.ports.map((p: Loose) =>
      typeof p === 'string' ? p : `${p.published}:${p.target}`,
    );
    expect(published).toContain(`${publicUrl.port}:8090`);
  });

  it('lets the sidecar drain before Docker kills it, and stops it before the container it serves', () => {
    const drainS = seconds(env('sidecar').DRAIN_GRACE!);
    expect(seconds(services.sidecar.stop_grace_period)).toBeGreaterThanOrEqual(drainS + EXIT_MARGIN_S);
    // Compose stops a service before the services it depends on.
    expect(Object.keys(services.sidecar.depends_on)).toEqual(expect.arrayContaining(['inference', 'nats']));
  });

  it('mounts only files and volumes that exist', () => {
    const file = repoPath(COMPOSE);
    for (const [name, service] of Object.entries(services))
      for (const volume of service.volumes ?? []) {
        const source = typeof volume === 'string' ? volume.split(':')[0]! : volume.source;
        if (source.startsWith('.') || source.startsWith('/'))
          expect(existsSync(resolve(dirname(file), source)), `${name}: ${source}`).toBe(true);
        else expect(Object.keys(config.volumes), `${name}: ${source}`).toContain(source);
      }
    const scrape = readFileSync(repoPath('examples/06-docker-compose/prometheus.yml'), 'utf8');
    expect(scrape).toContain('sidecar:8010');
    expect(scrape).toContain('gateway:8090');
  });
});
