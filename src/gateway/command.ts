import { ConfigError } from '../shared/env.js';
import { createLogger } from '../shared/log.js';
import { exitSoonIfStillAlive, installSignalHandlers } from '../shared/signals.js';
import { loadGatewayConfig } from './config.js';
import { Gateway } from './server.js';

/** `nvcf-sidecar gateway [--port N] …`: runs until SIGTERM/SIGINT; resolves with the exit code. */
export async function runGateway(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  let config;
  try {
    config = loadGatewayConfig(env, args);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`nvcf-sidecar gateway: ${err.message}\n`);
    return 2;
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
    return 0;
  } catch (err) {
    log.error({ err: (err as Error).message }, 'gateway failed');
    return 1;
  } finally {
    await gateway.stop();
    uninstall();
    log.flush();
    exitSoonIfStillAlive();
  }
}
