import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadGatewayConfig } from '../gateway/config.js';
import { Gateway } from '../gateway/server.js';
import { EXIT, UsageError, packageVersion, parseCommandArgs } from '../shared/command-line.js';
import { createLogger } from '../shared/log.js';
import { exitSoonIfStillAlive, installSignalHandlers } from '../shared/signals.js';
import { ConfigError, loadWorkerConfig } from '../worker/config.js';
import { Worker } from '../worker/lifecycle.js';
import { reportContainer } from './container-watch.js';
import { startDemoContainer } from './demo-container.js';
import { NatsServer, NatsServerMissingError, stopChild } from './nats-server.js';

/** Fixed ids, so the curl line in the README works run after run. */
export const DEV_FUNCTION_ID = 'de7e1000-0000-4000-8000-000000000001';
export const DEV_VERSION_ID = 'de7e1000-0000-4000-8000-000000000002';

export const DEV_USAGE = `usage: nvcf-sidecar dev [options]

NATS, the gateway and one worker in one process, for a container on this machine.
  --demo                also start the bundled echo container (examples/01-echo)
  --inference-url URL   your container's inference endpoint (default http://127.0.0.1:8000/echo)
  --health-path PATH    its health endpoint, on the same port (default /v2/health/ready)
  --port N              gateway port (default 8090; 0 picks a free one)
  --concurrency N       requests the worker runs at once (default 4)
  --shared-dir DIR      where input assets and output folders go, for a container in Docker:
                        mount DIR at the same path (docker run -v DIR:DIR); default a temp folder
  --log-level LEVEL     log level of the gateway and worker (default warn)
  -h, --help            show this text
  --version             print nvcf-sidecar's version
NATS_URL, if set, is used instead of starting nats-server.
Ctrl-C: the gateway stops taking calls, the worker drains, then the demo container and nats-server
stop and temporary state is removed; a second Ctrl-C exits at once (and still removes it).`;

const OPTIONS = {
  demo: { type: 'boolean' },
  'inference-url': { type: 'string' },
  'health-path': { type: 'string' },
  port: { type: 'string' },
  concurrency: { type: 'string' },
  'shared-dir': { type: 'string' },
  'log-level': { type: 'string' },
  version: { type: 'boolean' },
} as const;

interface DevOptions {
  demo: boolean;
  inferenceUrl: URL;
  healthPath: string;
  port: string;
  concurrency: string;
  sharedDir: string | undefined;
  logLevel: string;
}

function readOptions(args: readonly string[]): DevOptions | 'help' | 'version' {
  const { values, positionals, help } = parseCommandArgs(args, OPTIONS);
  if (help) return 'help';
  if (values.version) return 'version';
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const url = values['inference-url'] ?? 'http://127.0.0.1:8000/echo';
  if (!URL.canParse(url) || new URL(url).protocol !== 'http:')
    throw new UsageError(`--inference-url must be an http:// URL such as http://127.0.0.1:8000/echo, not "${url}"`);
  const sharedDir = values['shared-dir'];
  return {
    demo: Boolean(values.demo),
    inferenceUrl: new URL(url),
    healthPath: values['health-path'] ?? '/v2/health/ready',
    port: values.port ?? '8090',
    concurrency: values.concurrency ?? '4',
    sharedDir: sharedDir === undefined ? undefined : isAbsolute(sharedDir) ? sharedDir : resolve(sharedDir),
    logLevel: values['log-level'] ?? 'warn',
  };
}

/**
 * `nvcf-sidecar dev`: NATS, the gateway and one worker in one process, for a laptop. On Ctrl-C
 * the parts stop in the order that loses nothing: the gateway stops taking calls, the worker
 * drains (it still needs the container and NATS), then the demo container and nats-server.
 */
export async function runDev(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let options;
  try {
    options = readOptions(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`nvcf-sidecar dev: ${err.message}\n\nrun "nvcf-sidecar dev --help" for the options\n`);
    return EXIT.badConfiguration;
  }
  if (options === 'help') return (process.stdout.write(`${DEV_USAGE}\n`), EXIT.ok);
  if (options === 'version') return (process.stdout.write(`${packageVersion()}\n`), EXIT.ok);

  const log = createLogger(options.logLevel);
  const say = (line: string) => process.stdout.write(`${line}\n`);
  const stopping = new AbortController();
  const uninstall = installSignalHandlers(() => stopping.abort(), log);
  const stopRequested = aborted(stopping.signal);
  // Ordered stops for Ctrl-C, and what must go even when the process exits at once.
  let gateway: Gateway | undefined;
  let worker: { stop: () => Promise<unknown> } | undefined;
  let demo: Awaited<ReturnType<typeof startDemoContainer>> | undefined;
  let nats: NatsServer | undefined;
  let tempRoot: string | undefined;
  const onExit = () => {
    demo?.child.kill('SIGKILL');
    nats?.disposeNow();
    if (tempRoot) rmSync(tempRoot, { recursive: true, force: true, maxRetries: 5 });
  };
  process.once('exit', onExit);
  try {
    let natsUrl = env.NATS_URL;
    if (!natsUrl) {
      nats = await NatsServer.start({ ownProcessGroup: true });
      natsUrl = nats.url;
      say(`nats-server     ${natsUrl} (pid ${nats.pid}, store ${nats.store})`);
    }
    let inference = options.inferenceUrl;
    if (options.demo) {
      demo = await startDemoContainer();
      inference = new URL(`http://127.0.0.1:${demo.port}/echo`);
      say(`demo container  ${inference.href} (pid ${demo.child.pid})`);
    }
    const shared = options.sharedDir ?? (tempRoot = await mkdtemp(join(tmpdir(), 'nvcf-dev-')));

    gateway = new Gateway(
      loadGatewayConfig({
        ...env,
        NATS_URL: natsUrl,
        GATEWAY_ID: 'dev',
        GATEWAY_PORT: options.port,
        LOG_LEVEL: options.logLevel,
      }),
      log.child({ part: 'gateway' }),
    );
    await Promise.race([gateway.start(), stopRequested]);
    if (stopping.signal.aborted) return EXIT.ok;

    const healthUrl = new URL(options.healthPath, inference.origin);
    const running = new Worker(
      loadWorkerConfig({
        FUNCTION_ID: DEV_FUNCTION_ID,
        FUNCTION_VERSION_ID: DEV_VERSION_ID,
        FUNCTION_NAME: options.demo ? 'echo-demo' : 'dev',
        NCA_ID: 'local',
        INFERENCE_HOST: inference.hostname,
        INFERENCE_PORT: inference.port || '80',
        INFERENCE_URL: `${inference.pathname}${inference.search}`,
        INFERENCE_HEALTH_ENDPOINT: options.healthPath,
        INFERENCE_HEALTH_INTERVAL: '1s',
        MAX_REQUEST_CONCURRENCY: options.concurrency,
        BASE_ASSET_DIR: join(shared, 'inputAssets'),
        BASE_RESPONSE_DIR: join(shared, 'response'),
        TERMINATION_LOG_PATH: join(shared, 'termination-log'),
        HEALTH_PORT: '0',
        METRICS_PORT: '0',
        NATS_URL: natsUrl,
        DRAIN_GRACE: '10s',
        LOG_LEVEL: options.logLevel,
      }),
      log.child({ part: 'worker' }),
    );
    const workerDone = running.run();
    worker = { stop: () => (running.requestStop(), workerDone) };
    while (running.ports.metrics === 0 && running.state !== 'failed' && running.state !== 'stopped') await sleep(20);

    say(`gateway         ${gateway.url}`);
    say(`worker health   http://127.0.0.1:${running.ports.health}/v1/health/ready`);
    say(`worker metrics  http://127.0.0.1:${running.ports.metrics}/metrics`);
    say(`shared folder   ${shared} (assets in inputAssets/, outputs in response/)`);
    say(`function ${DEV_FUNCTION_ID} -> ${inference.href}; waiting for ${healthUrl.href} ...`);
    void reportContainer(() => running.state, healthUrl, say, stopping.signal);

    while (running.state !== 'running' && running.state !== 'failed' && running.state !== 'stopped') {
      if (await Promise.race([stopRequested.then(() => true), sleep(100, false)])) return EXIT.ok;
    }
    if (running.state !== 'running') {
      say(`the worker stopped: is your container up at ${healthUrl.href}?`);
      return EXIT.failed;
    }
    say('ready. Try:');
    say(
      `  curl -s -X POST ${gateway.url}/v2/nvcf/pexec/functions/${DEV_FUNCTION_ID} -H 'Content-Type: application/json' -d '{"hello":"world"}'`,
    );
    say('Ctrl-C stops everything.');
    return await Promise.race([stopRequested.then(() => EXIT.ok), workerDone]);
  } catch (err) {
    const message =
      err instanceof NatsServerMissingError || err instanceof ConfigError
        ? err.message
        : `dev failed: ${(err as Error).message}`;
    process.stderr.write(`nvcf-sidecar dev: ${message}\n`);
    return err instanceof ConfigError ? EXIT.badConfiguration : EXIT.failed;
  } finally {
    stopping.abort();
    if (gateway || worker || demo || nats) say('stopping: the gateway takes no more calls');
    await gateway?.stop().catch(() => undefined);
    if (worker) say('stopping: the worker drains its requests');
    await worker?.stop().catch(() => undefined);
    if (demo) await stopChild(demo.child, 3_000).catch(() => undefined);
    if (nats) say('stopping: nats-server');
    await nats?.dispose().catch(() => undefined);
    if (tempRoot) await rm(tempRoot, { recursive: true, force: true }).catch(() => undefined);
    process.off('exit', onExit);
    if (nats || tempRoot) say(`stopped; removed ${[nats?.store, tempRoot].filter(Boolean).join(' and ')}`);
    uninstall();
    log.flush();
    exitSoonIfStillAlive();
  }
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
