import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NvcfError } from '../../shared/errors.js';
import type { NatsSettings } from '../../shared/nats.js';
import type { DeploymentSpecification, VersionRecord } from './schema.js';

/** This machine cannot start the function's container as registered: trying again changes nothing. */
export class LaunchError extends NvcfError {
  override name = 'LaunchError';
  readonly retry = 'give-up';
}

/** How the pieces of one instance are started: the container (an image or a local command) and its worker. */

/** The last lines a process wrote, bounded, to explain why it ended. */
export class Tail {
  private readonly lines: string[] = [];
  private partial = '';
  constructor(private readonly keep = 30) {}

  push(chunk: Buffer | string): string[] {
    const text = this.partial + chunk.toString();
    const parts = text.split('\n');
    this.partial = (parts.pop() ?? '').slice(-2000);
    for (const line of parts) {
      this.lines.push(line.slice(0, 500));
      if (this.lines.length > this.keep) this.lines.shift();
    }
    return parts;
  }

  text(count = this.keep): string {
    return [...this.lines, this.partial]
      .filter((l) => l.trim() !== '')
      .slice(-count)
      .join('\n');
  }
}

export type Engine = 'docker' | 'podman';

/** The first container engine whose daemon answers, looked for once per gateway. */
export function findEngine(): Promise<Engine | undefined> {
  const probe = (engine: Engine) =>
    new Promise<boolean>((resolve) =>
      execFile(engine, ['info', '--format', '{{.ID}}'], { timeout: 5_000 }, (err) => resolve(!err)),
    );
  return (async () => {
    for (const engine of ['docker', 'podman'] as const) if (await probe(engine)) return engine;
    return undefined;
  })();
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export interface ContainerPlan {
  record: VersionRecord;
  engine: Engine | undefined;
  name: string;
  /** Port on 127.0.0.1 where the worker finds the container. */
  port: number;
  /** Directories the worker writes and the container reads: mounted at the same path in an image. */
  dirs: string[];
}

/** Starts the user's container: `localCommand` when given, else the image under the engine. Throws if neither can run. */
export function startContainer(plan: ContainerPlan): ChildProcess {
  const { record } = plan;
  const env = Object.fromEntries(record.containerEnvironment.map((e) => [e.key, e.value]));
  if (record.localCommand) {
    const [command, ...args] = record.localCommand;
    // Its own process group, so a shell script's children stop with it.
    return spawn(command!, args, {
      env: { ...ownEnvironment(), ...env, INFERENCE_PORT: String(plan.port) },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
  }
  if (!record.containerImage) throw new LaunchError('the function has no containerImage and no localCommand to run');
  if (!plan.engine)
    throw new LaunchError(
      `no container engine (docker or podman) answers on this machine to run ${record.containerImage}; register the function with the harness-only "localCommand" instead`,
    );
  const args = ['run', '--rm', '--name', plan.name, '-p', `127.0.0.1:${plan.port}:${record.inferencePort}`];
  for (const [key, value] of Object.entries(env)) args.push('-e', `${key}=${value}`);
  for (const dir of plan.dirs) args.push('-v', `${dir}:${dir}`);
  args.push(record.containerImage, ...(record.containerArgs?.split(/\s+/).filter(Boolean) ?? []));
  return spawn(plan.engine, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
}

/** The gateway's environment without its own settings and NATS credentials, which are no business of the user's code. */
function ownEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(GATEWAY_|NATS_)/.test(key)));
}

const here = dirname(fileURLToPath(import.meta.url));

/** `node src/main.ts worker` under tsx from a checkout, `node dist/main.js worker` when built. */
function workerCommand(): { args: string[]; cwd: string } {
  const source = join(here, '..', '..', 'main.ts');
  const root = join(here, '..', '..', '..');
  if (existsSync(source)) return { args: ['--import', 'tsx', source, 'worker'], cwd: root };
  return { args: [join(here, '..', '..', 'main.js'), 'worker'], cwd: root };
}

export interface WorkerPlan {
  record: VersionRecord;
  spec: DeploymentSpecification;
  workerId: string;
  host: string;
  port: number;
  nats: NatsSettings;
  dirs: { assets: string; responses: string; terminationLog: string };
  logLevel: string;
}

/** The environment an NVCF pod would give the worker beside this container. */
function workerEnv(plan: WorkerPlan): Record<string, string> {
  const { record, spec, nats } = plan;
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    FUNCTION_ID: record.id,
    FUNCTION_VERSION_ID: record.versionId,
    FUNCTION_NAME: record.name,
    NCA_ID: record.ncaId,
    WORKER_ID: plan.workerId,
    INFERENCE_HOST: plan.host,
    INFERENCE_PORT: String(plan.port),
    INFERENCE_URL: record.inferenceUrl,
    INFERENCE_HEALTH_ENDPOINT: record.health.uri,
    INFERENCE_HEALTH_TIMEOUT: `${record.health.timeout}s`,
    INFERENCE_HEALTH_EXPECTED_RESPONSE_CODE: String(record.health.expectedStatusCode),
    // A laptop wants to see an instance come up within a second, not NVCF's 10 s.
    INFERENCE_HEALTH_INTERVAL: '1s',
    MAX_REQUEST_CONCURRENCY: String(spec.maxRequestConcurrency),
    BASE_ASSET_DIR: plan.dirs.assets,
    BASE_RESPONSE_DIR: plan.dirs.responses,
    TERMINATION_LOG_PATH: plan.dirs.terminationLog,
    HEALTH_PORT: '0',
    METRICS_PORT: '0',
    CLOUD_PROVIDER: spec.backend ?? 'LOCAL',
    INSTANCE_TYPE: spec.instanceType ?? spec.gpu,
    NATS_URL: nats.servers.join(','),
    DRAIN_GRACE: '20s',
    LOG_LEVEL: plan.logLevel,
  };
  if (nats.token) env.NATS_TOKEN = nats.token;
  if (nats.user) env.NATS_USER = nats.user;
  if (nats.pass) env.NATS_PASSWORD = nats.pass;
  if (nats.credsFile) env.NATS_CREDS_FILE = nats.credsFile;
  return env;
}

/**
 * In a process group of its own: a Ctrl-C at the gateway's terminal (sent to the whole foreground
 * group) must reach only the gateway, which then drains each worker with one SIGTERM; a worker
 * that got the Ctrl-C too would take that SIGTERM for a second signal and exit without draining.
 */
export function startWorker(plan: WorkerPlan): ChildProcess {
  const { args, cwd } = workerCommand();
  return spawn(process.execPath, args, {
    cwd,
    env: workerEnv(plan),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
}

/** Signals a process and, for a container started in its own group, everything it started. */
export function signal(child: ChildProcess, sig: NodeJS.Signals, group: boolean): void {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  try {
    if (group) process.kill(-child.pid, sig);
    else child.kill(sig);
  } catch {
    child.kill(sig);
  }
}

/** Asks a process to stop, insists with SIGKILL after `graceMs`, and waits until it has. */
export async function stopProcess(child: ChildProcess, graceMs: number, group: boolean): Promise<void> {
  // No pid: it never started (spawn failed), so no exit will come.
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const gone = new Promise((resolve) => child.once('exit', resolve));
  signal(child, 'SIGTERM', group);
  const timer = setTimeout(() => signal(child, 'SIGKILL', group), graceMs);
  await gone;
  clearTimeout(timer);
}
