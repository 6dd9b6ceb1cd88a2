import { isAbsolute, resolve } from 'node:path';
import { loadGatewayConfig } from '../gateway/config.js';
import { LifecycleCallFailed, type GatewayTarget } from '../gateway/lifecycle/client.js';
import { Gateway } from '../gateway/server.js';
import { EXIT, UsageError, answerHelpOrVersion, parseCommandArgs } from '../shared/command-line.js';
import { ConfigError } from '../shared/env.js';
import { createLogger } from '../shared/log.js';
import { exitSoonIfStillAlive, installSignalHandlers } from '../shared/signals.js';
import { reportContainer } from './container-watch.js';
import {
  DEV_FUNCTION_ID,
  DeploymentFollower,
  devFunctionSpec,
  registerAndDeploy,
  undeployAndForget,
} from './deploy.js';
import { NatsServer, NatsServerError } from './nats-server.js';

export const DEV_USAGE = `usage: nvcf-sidecar dev [options]

NATS and the gateway, then your function registered and deployed through the gateway's lifecycle
API (one instance: a worker beside your running container, or beside the demo).
  --demo                deploy the bundled echo container (examples/01-echo) instead
  --inference-url URL   your container's inference endpoint (default http://127.0.0.1:8000/echo)
  --health-path PATH    its health endpoint, on the same port (default /v2/health/ready)
  --port N              gateway port (default 8090; 0 picks a free one)
  --concurrency N       requests the worker runs at once (default 4)
  --shared-dir DIR      where the instance's input asset and output folders go, for a container
                        in Docker: mount DIR at the same path (docker run -v DIR:DIR); kept at
                        stop. Default: a temporary folder, removed at stop
  --log-level LEVEL     log level of the gateway, which logs the worker's warnings (default warn)
  -h, --help            show this text
  --version             print nvcf-sidecar's version
NATS_URL, if set, is used instead of starting nats-server.
Ctrl-C: the function is undeployed (its worker drains while the gateway still answers), then the
gateway and nats-server stop and temporary state is removed; a second Ctrl-C exits at once (and
still kills every process and removes it).`;

const OPTIONS = {
  demo: { type: 'boolean' },
  'inference-url': { type: 'string' },
  'health-path': { type: 'string' },
  port: { type: 'string' },
  concurrency: { type: 'string' },
  'shared-dir': { type: 'string' },
  'log-level': { type: 'string' },
} as const;

interface DevOptions {
  demo: boolean;
  inferenceUrl: URL;
  healthPath: string;
  port: string;
  concurrency: number;
  sharedDir: string | undefined;
  logLevel: string;
}

function readOptions(args: readonly string[]): DevOptions | number {
  const parsed = parseCommandArgs(args, OPTIONS);
  const answered = answerHelpOrVersion(parsed, DEV_USAGE);
  if (answered !== undefined) return answered;
  const { values, positionals } = parsed;
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const url = values['inference-url'] ?? 'http://127.0.0.1:8000/echo';
  if (!URL.canParse(url) || new URL(url).protocol !== 'http:')
    throw new UsageError(`--inference-url must be an http:// URL such as http://127.0.0.1:8000/echo, not "${url}"`);
  const sharedDir = values['shared-dir'];
  const concurrency = Number(values.concurrency ?? '4');
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 16384)
    throw new UsageError(`--concurrency must be a whole number from 1 to 16384, not "${values.concurrency}"`);
  return {
    demo: Boolean(values.demo),
    inferenceUrl: new URL(url),
    healthPath: values['health-path'] ?? '/v2/health/ready',
    port: values.port ?? '8090',
    concurrency,
    sharedDir: sharedDir === undefined ? undefined : isAbsolute(sharedDir) ? sharedDir : resolve(sharedDir),
    logLevel: values['log-level'] ?? 'warn',
  };
}

/** The environment of dev's own gateway: the caller's, with its id, port and log level set. */
function gatewayEnv(env: NodeJS.ProcessEnv, natsUrl: string, options: DevOptions): NodeJS.ProcessEnv {
  return { ...env, NATS_URL: natsUrl, GATEWAY_ID: 'dev', GATEWAY_PORT: options.port, LOG_LEVEL: options.logLevel };
}

/** A key the gateway will take, when the environment gives it keys (GATEWAY_API_KEY, or the first of GATEWAY_API_KEYS). */
function ownKey(env: NodeJS.ProcessEnv): string | undefined {
  const first = env.GATEWAY_API_KEYS?.split(',')[0]?.trim();
  return env.GATEWAY_API_KEY || (first ? first.slice(first.indexOf(':') + 1).trim() : undefined);
}

/**
 * `nvcf-sidecar dev`: NATS and the gateway in one process, then the function registered and
 * deployed through the gateway's own lifecycle API, as a deployment script would, so it shows in
 * the console and in `GET /v2/nvcf/functions` like any other. On Ctrl-C the parts stop in the
 * order that loses nothing: the function is undeployed and its worker drains while the gateway
 * still answers (workers fetch assets and upload results through it), then the gateway stops,
 * then nats-server.
 */
export async function runDev(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let options;
  try {
    options = readOptions(args);
    if (typeof options === 'number') return options;
    // The gateway's settings are checked before anything starts: a bad one exits 2 with nothing run.
    loadGatewayConfig(gatewayEnv(env, env.NATS_URL || 'nats://127.0.0.1:4222', options));
  } catch (err) {
    if (!(err instanceof UsageError || err instanceof ConfigError)) throw err;
    process.stderr.write(`nvcf-sidecar dev: ${err.message}\n\nrun "nvcf-sidecar dev --help" for the options\n`);
    return EXIT.badConfiguration;
  }

  const log = createLogger(options.logLevel);
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const stopping = new AbortController();
  const uninstall = installSignalHandlers(() => stopping.abort(), log);
  const stopRequested = aborted(stopping.signal);
  // Ordered stops for Ctrl-C; the gateway kills its instances itself when the process exits at once.
  let gateway: Gateway | undefined;
  let nats: NatsServer | undefined;
  let target: GatewayTarget | undefined;
  let deployed = false;
  const onExit = () => nats?.disposeNow();
  process.once('exit', onExit);
  try {
    let natsUrl = env.NATS_URL;
    if (!natsUrl) {
      nats = await NatsServer.start({ ownProcessGroup: true });
      natsUrl = nats.url;
      say(`nats-server     ${natsUrl} (pid ${nats.pid}, store ${nats.store})`);
    }
    gateway = new Gateway(loadGatewayConfig(gatewayEnv(env, natsUrl, options)), log.child({ part: 'gateway' }));
    await Promise.race([gateway.start(), stopRequested]);
    if (stopping.signal.aborted) return EXIT.ok;
    say(`gateway         ${gateway.url} (console ${gateway.url}/console)`);
    say(`gateway metrics ${gateway.url}/metrics`);
    target = { url: gateway.url, apiKey: ownKey(env) };

    await registerAndDeploy(target, devFunctionSpec(options), options.concurrency);
    deployed = true;
    const follower = new DeploymentFollower(target, stopping.signal);
    void follower.run();
    const up = await follower.wait((f) => Boolean(f.instance?.healthPort) || f.workerState() === 'failed');
    if (!up) return EXIT.ok;
    if (follower.workerState() === 'failed') return failed(follower, say);
    const instance = follower.instance!;
    const inference = options.demo ? new URL(`http://127.0.0.1:${instance.port}/echo`) : options.inferenceUrl;
    const healthUrl = new URL(options.healthPath, inference.origin);
    if (options.demo) say(`demo container  ${inference.href} (pid ${instance.containerPid})`);
    say(`worker health   http://127.0.0.1:${instance.healthPort}/v1/health/ready (pid ${instance.workerPid})`);
    say(`worker metrics  http://127.0.0.1:${instance.metricsPort}/metrics`);
    if (options.sharedDir) say(`shared folder   ${options.sharedDir} (kept at stop)`);
    say(`instance folder ${instance.dir} (assets in inputAssets/, outputs in response/)`);
    say(`function ${DEV_FUNCTION_ID} -> ${inference.href}; waiting for ${healthUrl.href} ...`);
    void reportContainer(() => follower.workerState(), healthUrl, say, stopping.signal);

    const settled = (f: DeploymentFollower) => ['running', 'failed'].includes(f.workerState());
    if (!(await follower.wait(settled))) return EXIT.ok;
    if (follower.workerState() === 'failed') return failed(follower, say);
    say('ready. Try:');
    say(
      `  curl -s -X POST ${gateway.url}/v2/nvcf/pexec/functions/${DEV_FUNCTION_ID} -H 'Content-Type: application/json' -d '{"hello":"world"}'`,
    );
    say('Ctrl-C stops everything.');
    // The gateway replaces an instance that dies; only one that keeps failing ends `dev`.
    if (!(await follower.wait((f) => f.workerState() === 'failed'))) return EXIT.ok;
    return failed(follower, say);
  } catch (err) {
    const message =
      err instanceof NatsServerError || err instanceof ConfigError || err instanceof LifecycleCallFailed
        ? err.message
        : `dev failed: ${(err as Error).message}`;
    process.stderr.write(`nvcf-sidecar dev: ${message}\n`);
    return err instanceof ConfigError ? EXIT.badConfiguration : EXIT.failed;
  } finally {
    stopping.abort();
    if (deployed && target) {
      say('stopping: the function is undeployed; the worker drains its requests');
      await undeployAndForget(target);
      await gateway?.undeployed().catch(() => undefined);
    }
    if (gateway) say('stopping: the gateway takes no more calls');
    await gateway?.stop().catch(() => undefined);
    if (nats) say('stopping: nats-server');
    await nats?.dispose().catch(() => undefined);
    process.off('exit', onExit);
    if (nats) say(`stopped; removed ${nats.store}`);
    uninstall();
    log.flush();
    exitSoonIfStillAlive();
  }
}

function failed(follower: DeploymentFollower, say: (line: string) => void): number {
  const reason = follower.latest?.healthInfo.find((h) => h.error)?.error ?? follower.instance?.lastError;
  say(`the deployment failed${reason ? `: ${reason}` : ''}`);
  return EXIT.failed;
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
