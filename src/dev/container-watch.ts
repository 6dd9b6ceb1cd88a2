import { setTimeout as sleep } from 'node:timers/promises';
import { probeContainer } from '../worker/container-health.js';
import type { LifecycleState } from '../worker/lifecycle.js';

/** How often `dev` repeats what is wrong with the container while the worker waits for it. */
const CONTAINER_REPORT_MS = 5_000;

/**
 * While the worker waits for the container (at start, or after it went unhealthy), says what is
 * wrong every few seconds instead of leaving the terminal silent; says so once it is healthy.
 */
export async function reportContainer(
  state: () => LifecycleState,
  healthUrl: URL,
  say: (line: string) => void,
  signal: AbortSignal,
): Promise<void> {
  let complained = false;
  // A container that is up answers the worker's first probe; only a slow one gets a line.
  await sleep(1_000, undefined, { signal }).catch(() => undefined);
  while (!signal.aborted) {
    const now = state();
    if (now === 'waiting' || now === 'unhealthy' || now === 'starting') {
      if (now !== 'starting') {
        const probe = await probeContainer({ url: healthUrl.href, timeoutMs: 2_000, expectedStatus: 200 });
        if (!probe.healthy) {
          say(describe(probe.reason, healthUrl));
          complained = true;
        }
      }
    } else if (now === 'running' && complained) {
      say(`the container at ${healthUrl.origin} is healthy; the worker takes requests`);
      complained = false;
    } else if (now !== 'running') return;
    await sleep(complained ? CONTAINER_REPORT_MS : 1_000, undefined, { signal }).catch(() => undefined);
  }
}

function describe(reason: string, healthUrl: URL): string {
  const where = `the container at ${healthUrl.origin}`;
  if (reason.includes('ECONNREFUSED'))
    return `${where} refuses connections (is it running, on port ${healthUrl.port || 80}?); waiting for it`;
  if (reason.includes('ENOTFOUND')) return `${where} cannot be found (no such host); waiting for it`;
  return `${where} is not ready (${reason} at ${healthUrl.pathname}); waiting for it`;
}
