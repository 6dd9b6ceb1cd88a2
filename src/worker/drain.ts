import { setTimeout as sleep } from 'node:timers/promises';
import { SidecarError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { CancelRegistry } from './cancels.js';
import type { Intake } from './intake.js';

/** How a drain ended: requests that finished, went back to the queue, or were cut at the grace's end. */
export interface DrainReport {
  finished: number;
  returned: number;
  aborted: number;
}

export interface DrainOptions {
  graceMs: number;
  cancels: CancelRegistry;
  log: Logger;
  /** Requests that have finished since the drain began (counted by the worker as they end). */
  finished: () => number;
}

/**
 * Stop pulling (unstarted work goes straight back) → let running requests finish within the
 * grace → abort what is left (handed back for another worker to run).
 */
export async function drainIntake(
  intake: Intake,
  { graceMs, cancels, log, finished }: DrainOptions,
): Promise<DrainReport> {
  log.info({ inFlight: intake.inFlight, graceMs }, 'draining');
  await intake.stop();
  const graceTimer = new AbortController();
  const graceOver = sleep(graceMs, 'grace-over' as const, { signal: graceTimer.signal }).catch(() => 'idle' as const);
  const outcome = await Promise.race([intake.idle().then(() => 'idle' as const), graceOver]);
  graceTimer.abort();
  let aborted = 0;
  if (outcome === 'grace-over') {
    aborted = cancels.abortAll(new SidecarError('DRAINING', 'the worker is shutting down and its drain grace ran out'));
    log.warn({ aborted }, 'drain grace over; aborting the requests still running');
    await intake.idle();
  }
  return { finished: finished() - aborted, returned: intake.returnedCount + aborted, aborted };
}
