import { setTimeout as sleep } from 'node:timers/promises';
import type { Consumer, JsMsg } from 'nats';
import type { Logger } from '../shared/log.js';
import type { WorkerMetrics } from './metrics.js';

/**
 * A pull request stays open this long. While one is open its slots are spoken for, and a
 * drain waits for it to end, so it is short; an idle worker re-asks this often, which costs
 * one tiny request per interval.
 */
const FETCH_EXPIRES_MS = 2_000;
const FETCH_ERROR_BACKOFF_MS = 500;

export type GateState = 'open' | 'unhealthy' | 'draining';

export interface IntakeOptions {
  consumer: Consumer;
  capacity: number;
  /** JetStream ack wait of the consumer: leases are renewed at a third of it. */
  ackWaitMs: number;
  gate: () => GateState;
  handle: (msg: JsMsg) => Promise<unknown>;
  /** Delay before redelivery of a message that was not started because the container is unhealthy. */
  unhealthyRetryMs: number;
  /** The consumer's max_deliver; a message on its last delivery is never handed back. */
  maxDeliver: number;
  /** Answers a message on its last delivery that cannot be started here, instead of a nak. */
  refuse: (msg: JsMsg, gate: Exclude<GateState, 'open'>) => Promise<unknown>;
  log: Logger;
  metrics: WorkerMetrics;
}

/**
 * Pulls work only for free slots: the messages held here (being handled, or asked for in an
 * open pull request) never exceed the capacity, so no message waits in this process while
 * another worker is idle. Leases of running messages are renewed by one timer for all of them.
 */
export class Intake {
  private readonly running = new Set<JsMsg>();
  private reserved = 0;
  private readonly fetches = new Set<Promise<void>>();
  private stopped = false;
  private readonly waiters = new Set<() => void>();
  private loop: Promise<void> | undefined;
  private readonly leaseTimer: NodeJS.Timeout;
  private returned = 0;

  constructor(private readonly options: IntakeOptions) {
    // A timer, not per-request code, renews leases, so a request's own work cannot starve it.
    this.leaseTimer = setInterval(() => this.renewLeases(), Math.max(100, Math.floor(options.ackWaitMs / 3)));
    this.leaseTimer.unref();
  }

  start(): void {
    this.loop ??= this.pullLoop();
  }

  get inFlight(): number {
    return this.running.size;
  }

  /** Messages handed back to the queue without being started. */
  get returnedCount(): number {
    return this.returned;
  }

  /** Call when the gate may have opened (container healthy again). */
  poke(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /** Stop asking for work; resolves when no pull request is open any more. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.poke();
    await this.loop;
    await Promise.all(this.fetches);
  }

  /** Resolves when every running request has settled its message. */
  async idle(): Promise<void> {
    while (this.running.size > 0) await this.waitForChange();
  }

  close(): void {
    clearInterval(this.leaseTimer);
  }

  private async pullLoop(): Promise<void> {
    while (!this.stopped) {
      const free = this.options.capacity - this.running.size - this.reserved;
      // One pull request open at a time. While it waits, the queue is empty, so a second one
      // would find nothing either; slots freed meanwhile join the next pull, which batches
      // them (one pull per freed slot cost a subscription, a request and an expiry each).
      if (free <= 0 || this.fetches.size > 0 || this.options.gate() !== 'open') {
        await this.waitForChange(1_000);
        continue;
      }
      this.reserved += free;
      const fetch = this.fetch(free).finally(() => this.fetches.delete(fetch));
      this.fetches.add(fetch);
    }
  }

  private async fetch(count: number): Promise<void> {
    let received = 0;
    try {
      const messages = await this.options.consumer.fetch({ max_messages: count, expires: FETCH_EXPIRES_MS });
      for await (const msg of messages) {
        received++;
        this.reserved--;
        this.accept(msg);
      }
    } catch (err) {
      this.options.log.warn({ err: (err as Error).message }, 'pulling work failed; retrying');
      await sleep(FETCH_ERROR_BACKOFF_MS);
    } finally {
      this.reserved -= count - received;
      this.poke();
    }
  }

  private accept(msg: JsMsg): void {
    const gate = this.stopped ? 'draining' : this.options.gate();
    if (gate !== 'open' && msg.info.deliveryCount >= this.options.maxDeliver) {
      // JetStream will not deliver it again: a nak would leave its caller waiting for ever.
      this.options
        .refuse(msg, gate)
        .catch((err: Error) =>
          this.options.log.error({ err: err.message }, 'could not answer a message on its last delivery'),
        );
      return;
    }
    if (gate !== 'open') {
      // Not started, so nobody loses anything: hand it straight back.
      msg.nak(gate === 'draining' ? 0 : this.options.unhealthyRetryMs);
      this.returned++;
      this.options.metrics.naks.inc({ reason: gate });
      return;
    }
    this.running.add(msg);
    this.options.metrics.inFlight.set(this.running.size);
    this.options
      .handle(msg)
      .catch((err: Error) => {
        // The handler settles its own message; reaching here is a bug, so make it loud but safe.
        this.options.log.error(
          { err: err.message, stack: err.stack },
          'request handler failed unexpectedly; handing the message back',
        );
        msg.nak(this.options.unhealthyRetryMs);
      })
      .finally(() => {
        this.running.delete(msg);
        this.options.metrics.inFlight.set(this.running.size);
        this.poke();
      });
  }

  private renewLeases(): void {
    for (const msg of this.running) {
      try {
        msg.working();
      } catch (err) {
        this.options.log.warn({ err: (err as Error).message, seq: msg.seq }, 'renewing a lease failed');
      }
    }
  }

  private waitForChange(timeoutMs?: number): Promise<void> {
    return new Promise((resolve) => {
      const finish = () => {
        if (timer) clearTimeout(timer);
        this.waiters.delete(finish);
        resolve();
      };
      const timer = timeoutMs ? setTimeout(finish, timeoutMs) : undefined;
      this.waiters.add(finish);
    });
  }
}
