import { setTimeout as sleep } from 'node:timers/promises';
import { loadGatewayConfig } from '../../src/gateway/config.js';
import { Gateway } from '../../src/gateway/server.js';
import { createLogger } from '../../src/shared/log.js';
import { LogSink } from './env.js';

export interface RunningGateway {
  gateway: Gateway;
  url: string;
  logs: LogSink;
  stop(): Promise<void>;
}

/** A gateway in this process on 127.0.0.1 and a port the OS picks, logging into a sink. */
export async function startGateway(natsUrl: string, env: Record<string, string> = {}): Promise<RunningGateway> {
  const config = loadGatewayConfig({
    NATS_URL: natsUrl,
    GATEWAY_PORT: '0',
    GATEWAY_ID: 'gw-test',
    LOG_LEVEL: 'debug',
    ...env,
  });
  const logs = new LogSink();
  const gateway = new Gateway(config, createLogger(config.logLevel, logs));
  await gateway.start();
  return { gateway, url: gateway.url, logs, stop: () => gateway.stop() };
}

/** Polls the functions API until the version reports `status`. */
export async function waitForStatus(
  url: string,
  functionId: string,
  versionId: string,
  status: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    const res = await fetch(`${url}/v2/nvcf/functions/${functionId}/versions/${versionId}`);
    last =
      res.status === 200
        ? ((await res.json()) as { function: { status: string } }).function.status
        : `HTTP ${res.status}`;
    if (last === status) return;
    await sleep(100);
  }
  throw new Error(`function ${functionId} never became ${status}; last seen ${last}`);
}
