import { EXIT, UsageError, answerHelpOrVersion, parseCommandArgs } from '../shared/command-line.js';
import { ConfigError } from '../shared/env.js';
import { createLogger } from '../shared/log.js';
import { exitSoonIfStillAlive, installSignalHandlers } from '../shared/signals.js';
import { loadWorkerConfig } from './config.js';
import { Worker } from './lifecycle.js';
import { clearUmask } from './shared-dir.js';

const WORKER_USAGE = `usage: nvcf-sidecar worker

the worker sidecar, run next to an inference container. It takes no options: like NVCF's own
worker it is configured by environment variables (FUNCTION_ID, FUNCTION_VERSION_ID, NATS_URL,
INFERENCE_PORT, ...), each listed with its default in docs/configuration.md.
  -h, --help   show this text
  --version    print nvcf-sidecar's version`;

/** `nvcf-sidecar worker`: runs until SIGTERM/SIGINT and drains; resolves with the exit code. */
export async function runWorker(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let config;
  try {
    const parsed = parseCommandArgs(args, {});
    const answered = answerHelpOrVersion(parsed, WORKER_USAGE);
    if (answered !== undefined) return answered;
    if (parsed.positionals.length > 0)
      throw new UsageError(
        `takes no arguments (got "${parsed.positionals.join(' ')}"); it is configured by environment variables, see docs/configuration.md`,
      );
    config = loadWorkerConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError || err instanceof UsageError)) throw err;
    process.stderr.write(`nvcf-sidecar worker: ${err.message}\n`);
    return EXIT.badConfiguration;
  }
  const log = createLogger(config.logLevel).child({ workerId: config.workerId });
  // This process runs only the worker: directories shared with the container need no chmod each.
  clearUmask();
  const worker = new Worker(config, log);
  const uninstall = installSignalHandlers(() => worker.requestStop(), log);
  try {
    return await worker.run();
  } finally {
    uninstall();
    log.flush();
    exitSoonIfStillAlive();
  }
}
