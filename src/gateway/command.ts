import { EXIT, UsageError, answerHelpOrVersion } from '../shared/command-line.js';
import { ConfigError } from '../shared/env.js';
import { createLogger } from '../shared/log.js';
import { exitSoonIfStillAlive, installSignalHandlers } from '../shared/signals.js';
import { GATEWAY_FLAGS, loadGatewayConfig, readGatewayArgs } from './config.js';
import { Gateway } from './server.js';

const GATEWAY_USAGE = `usage: nvcf-sidecar gateway [options]

the NVCF invocation API over NATS; every option also has an environment variable (docs/harness.md)
${Object.entries(GATEWAY_FLAGS)
  .map(([flag, name]) => `  ${`${flag} VALUE`.padEnd(28)}env ${name}`)
  .join('\n')}
  -h, --help                  show this text
  --version                   print nvcf-sidecar's version`;

/** `nvcf-sidecar gateway [--port N] …`: runs until SIGTERM/SIGINT; resolves with the exit code. */
export async function runGateway(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let config;
  try {
    const { flags, ...asked } = readGatewayArgs(args);
    const answered = answerHelpOrVersion(asked, GATEWAY_USAGE);
    if (answered !== undefined) return answered;
    config = loadGatewayConfig(env, flags);
  } catch (err) {
    if (!(err instanceof ConfigError || err instanceof UsageError)) throw err;
    process.stderr.write(`nvcf-sidecar gateway: ${err.message}\n`);
    return EXIT.badConfiguration;
  }
  const log = createLogger(config.logLevel).child({ gatewayId: config.gatewayId });
  const gateway = new Gateway(config, log);
  let stop: () => void = () => undefined;
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const uninstall = installSignalHandlers(() => stop(), log);
  try {
    // NATS may be unreachable for a long time at start; a stop signal must still be heard.
    await Promise.race([gateway.start(), stopped]);
    await stopped;
    return EXIT.ok;
  } catch (err) {
    log.error({ err: (err as Error).message }, 'gateway failed');
    return EXIT.failed;
  } finally {
    await gateway.stop();
    uninstall();
    log.flush();
    exitSoonIfStillAlive();
  }
}
