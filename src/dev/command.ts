import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadWorkerConfig } from '../worker/config.js';
import { loadGatewayConfig } from '../gateway/config.js';
import { Gateway } from '../gateway/server.js';
import { createLogger } from '../shared/log.js';
import { NatsServer, NatsServerMissingError, stopChild } from './nats-server.js';
import { exitSoonIfStillAlive, installSignalHandlers } from '../shared/signals.js';
import { Worker } from '../worker/lifecycle.js';

/** Fixed ids, so the curl line in the README works run after run. */
export const DEV_FUNCTION_ID = 'de7e1000-0000-4000-8000-000000000001';
export const DEV_VERSION_ID = 'de7e1000-0000-4000-8000-000000000002';

const USAGE = `usage: nvcf-sidecar dev [--demo] [--inference-url URL] [--health-path PATH] [--port N] [--log-level LEVEL]

  --demo               also start the bundled echo container (examples/01-echo)
  --inference-url URL  your container's inference endpoint (default http://127.0.0.1:8000/echo)
  --health-path PATH   its health endpoint (default /v2/health/ready)
  --port N             gateway port (default 8090; 0 picks a free one)
  --concurrency N      requests the worker runs at once (default 4)
  --log-level LEVEL    sidecar log level (default warn)
NATS_URL, if set, is used instead of starting nats-server.`;

interface DevOptions {
  demo: boolean;
  inferenceUrl: URL;
  healthPath: string;
  port: string;
  concurrency: string;
  logLevel: string;
}

function parseArgs(args: readonly string[]): DevOptions {
  const options: DevOptions = {
    demo: false,
    inferenceUrl: new URL('http://127.0.0.1:8000/echo'),
    healthPath: '/v2/health/ready',
    port: '8090',
    concurrency: '4',
    logLevel: 'warn',
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const value = () =>
      args[++i] ??
      (() => {
        throw new ConfigError(`${arg} needs a value`);
      })();
    if (arg === '--demo') options.demo = true;
    else if (arg === '--inference-url') {
      const text = value();
      if (!URL.canParse(text) || !/^http:$/.test(new URL(text).protocol))
        throw new ConfigError(
          `--inference-url must be an http:// URL such as http://127.0.0.1:8000/echo, not "${text}"`,
        );
      options.inferenceUrl = new URL(text);
    } else if (arg === '--health-path') options.healthPath = value();
    else if (arg === '--port') options.port = value();
    else if (arg === '--concurrency') options.concurrency = value();
    else if (arg === '--log-level') options.logLevel = value();
    else throw new ConfigError(`unknown option "${arg}"\n\n${USAGE}`);
  }
  return options;
}

/** examples/ sits next to src/ (tsx) and next to dist/ (built). */
function exampleFile(relative: string): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const candidate = join(dir, 'examples', relative);
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`cannot find examples/${relative} next to the sidecar`);
}

/** Starts the echo example on a free port and resolves with that port once it listens. */
async function startDemoContainer(): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, [exampleFile('01-echo/server.mjs')], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    let seen = '';
    child.once('exit', (code) => reject(new Error(`the demo container exited with ${code} before it listened`)));
    child.stdout.on('data', (d: Buffer) => {
      seen += d.toString();
      const match = /listening on http:\/\/[^:]+:(\d+)/.exec(seen);
      if (match) resolve(Number(match[1]));
    });
  });
  return { child, port };
}

/**
 * `nvcf-sidecar dev`: NATS, the gateway and one worker in one process, for a laptop. Every part
 * it started is stopped on Ctrl-C, in reverse order, before it exits.
 */
export async function runDev(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let options: DevOptions;
  try {
    options = parseArgs(args);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`nvcf-sidecar dev: ${err.message}\n`);
    return 2;
  }
  const log = createLogger(options.logLevel);
  const cleanups: (() => Promise<unknown>)[] = [];
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const uninstall = installSignalHandlers(() => stop(), log);
  const say = (line: string) => process.stdout.write(`${line}\n`);
  try {
    let natsUrl = env.NATS_URL;
    if (!natsUrl) {
      const nats = await NatsServer.start();
      cleanups.push(() => nats.dispose());
      natsUrl = nats.url;
      say(`nats-server ${natsUrl} (pid ${nats.pid})`);
    }
    let inference = options.inferenceUrl;
    if (options.demo) {
      const demo = await startDemoContainer();
      cleanups.push(() => stopChild(demo.child, 3_000));
      inference = new URL(`http://127.0.0.1:${demo.port}/echo`);
      say(`demo container ${inference.href} (pid ${demo.child.pid})`);
    }
    const root = await mkdtemp(join(tmpdir(), 'nvcf-dev-'));
    cleanups.push(() => rm(root, { recursive: true, force: true }));

    const gateway = new Gateway(
      loadGatewayConfig({ ...env, NATS_URL: natsUrl, GATEWAY_ID: 'dev', LOG_LEVEL: options.logLevel }, [
        '--port',
        options.port,
      ]),
      log.child({ part: 'gateway' }),
    );
    cleanups.push(() => gateway.stop());
    await gateway.start();

    const worker = new Worker(
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
        BASE_ASSET_DIR: join(root, 'inputAssets'),
        BASE_RESPONSE_DIR: join(root, 'response'),
        TERMINATION_LOG_PATH: join(root, 'termination-log'),
        HEALTH_PORT: '0',
        METRICS_PORT: '0',
        NATS_URL: natsUrl,
        DRAIN_GRACE: '10s',
        LOG_LEVEL: options.logLevel,
      }),
      log.child({ part: 'worker' }),
    );
    const workerDone = worker.run();
    cleanups.push(() => (worker.requestStop(), workerDone));
    say(`gateway ${gateway.url}`);
    say(`function ${DEV_FUNCTION_ID} -> ${inference.href}; waiting for the container at ${options.healthPath} ...`);
    while (worker.state !== 'running' && worker.state !== 'failed' && worker.state !== 'stopped') {
      const outcome = await Promise.race([
        stopped.then(() => 'stopped'),
        new Promise((r) => setTimeout(r, 100, 'tick')),
      ]);
      if (outcome === 'stopped') return 0;
    }
    if (worker.state !== 'running') {
      say(`the worker stopped: is your container up at ${inference.origin}${options.healthPath}?`);
      return 1;
    }
    say('ready. Try:');
    say(
      `  curl -s -X POST ${gateway.url}/v2/nvcf/pexec/functions/${DEV_FUNCTION_ID} -H 'Content-Type: application/json' -d '{"hello":"world"}'`,
    );
    say('Ctrl-C stops everything.');
    await Promise.race([stopped, workerDone]);
    return 0;
  } catch (err) {
    const message =
      err instanceof NatsServerMissingError || err instanceof ConfigError
        ? err.message
        : `dev failed: ${(err as Error).message}`;
    process.stderr.write(`nvcf-sidecar dev: ${message}\n`);
    return 1;
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
    uninstall();
    log.flush();
    exitSoonIfStillAlive();
  }
}
