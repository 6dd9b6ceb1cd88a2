import { setTimeout as sleep } from 'node:timers/promises';
import { request } from 'undici';
import { errorCode } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';

export interface ProbeSettings {
  url: string;
  timeoutMs: number;
  expectedStatus: number;
}

export type ProbeResult = { healthy: true } | { healthy: false; reason: string };

/** One GET of the container's health endpoint; healthy only on the expected status. */
export async function probeContainer(settings: ProbeSettings): Promise<ProbeResult> {
  try {
    const answer = await request(settings.url, {
      method: 'GET',
      headersTimeout: settings.timeoutMs,
      bodyTimeout: settings.timeoutMs,
      signal: AbortSignal.timeout(settings.timeoutMs),
    });
    await answer.body.dump();
    if (answer.statusCode === settings.expectedStatus) return { healthy: true };
    // 404 is common while a server is up but its routes are not (Triton loading models).
    return {
      healthy: false,
      reason: `health endpoint answered ${answer.statusCode}, expected ${settings.expectedStatus}`,
    };
  } catch (err) {
    return { healthy: false, reason: `health endpoint unreachable: ${errorCode(err)}` };
  }
}

/** NVCF probes every 500 ms while it waits for the container to come up. */
const STARTUP_PROBE_INTERVAL_MS = 500;

/**
 * Probes until the container is healthy or `readyTimeoutMs` passes. Resolves with undefined
 * when ready, or with the last failure reason on timeout or abort.
 */
export async function waitUntilHealthy(
  settings: ProbeSettings & { readyTimeoutMs: number },
  signal: AbortSignal,
  log: Logger,
): Promise<string | undefined> {
  const giveUpAt = Date.now() + settings.readyTimeoutMs;
  let last = 'not probed yet';
  let logged = '';
  while (!signal.aborted) {
    const result = await probeContainer(settings);
    if (result.healthy) return undefined;
    last = result.reason;
    if (last !== logged) {
      log.info({ reason: last }, 'waiting for the inference container to become healthy');
      logged = last;
    }
    if (Date.now() + STARTUP_PROBE_INTERVAL_MS > giveUpAt) return last;
    await sleep(STARTUP_PROBE_INTERVAL_MS, undefined, { signal }).catch(() => undefined);
  }
  return `stopped while waiting: ${last}`;
}

/**
 * Re-checks the container on an interval after startup. While it is unhealthy the worker pulls
 * no new work; requests already running carry on.
 */
export class HealthMonitor {
  private healthyNow = true;
  private timer: NodeJS.Timeout | undefined;
  private probing = false;

  constructor(
    private readonly settings: ProbeSettings & { intervalMs: number },
    private readonly onChange: (healthy: boolean, reason?: string) => void,
  ) {}

  get healthy(): boolean {
    return this.healthyNow;
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), this.settings.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  async check(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      const result = await probeContainer(this.settings);
      if (result.healthy !== this.healthyNow) {
        this.healthyNow = result.healthy;
        this.onChange(result.healthy, result.healthy ? undefined : result.reason);
      }
    } finally {
      this.probing = false;
    }
  }
}
