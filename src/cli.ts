import { ConfigError, loadWorkerConfig } from './worker/config.js';
import { runDev } from './dev/command.js';
import { runGateway } from './gateway/command.js';
import { runInvoke } from './invoke/command.js';
import { createLogger } from './shared/log.js';
import { exitSoonIfStillAlive, installSignalHandlers } from './shared/signals.js';
import { Worker } from './worker/lifecycle.js';

const USAGE = `usage: nvcf-sidecar <command>

commands:
  worker    run the worker sidecar next to an inference container (configured by environment
            variables; see docs/configuration.md)
  gateway   run the NVCF-compatible invocation API over NATS (docs/harness.md)
  dev       NATS + gateway + one worker for a container on this machine; --demo brings its own
  invoke    call a function through a gateway: nvcf-sidecar invoke <functionId> -d '{...}'
  help      show this text
`;

/** Runs one subcommand and resolves with the process exit code. */
export async function runCli(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'worker':
      return runWorker(rest, env);
    case 'gateway':
      return runGateway(rest, env);
    case 'dev':
      return runDev(rest, env);
    case 'invoke':
      return runInvoke(rest, env);
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`${command ? `unknown command "${command}"\n\n` : ''}${USAGE}`);
      return 2;
  }
}

async function runWorker(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (args.length > 0) {
    process.stderr.write(
      `nvcf-sidecar worker takes no arguments (got "${args.join(' ')}"); it is configured by environment variables, see docs/configuration.md\n`,
    );
    return 2;
  }
  let config;
  try {
    config = loadWorkerConfig(env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`nvcf-sidecar: ${err.message}\n`);
    return 1;
  }
  const log = createLogger(config.logLevel).child({ workerId: config.workerId });
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
