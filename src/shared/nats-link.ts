import { Events, type NatsConnection } from 'nats';

/**
 * Whether a NATS connection is up right now, from its status events. nats.js holds what is
 * published while it reconnects and sends it once it is back, so a call that must not leave
 * anything behind when it is refused asks here first: a publish made while disconnected could
 * be stored long after its caller was told it failed.
 */
export class NatsLink {
  private up = true;
  private readonly waiters = new Set<() => void>();

  constructor(nc: NatsConnection) {
    void this.watch(nc);
  }

  get online(): boolean {
    return this.up;
  }

  /** True once the connection is up, at once when it is; false when it is still down after `ms`. */
  async whenOnline(ms: number): Promise<boolean> {
    if (this.up) return true;
    return new Promise<boolean>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve(this.up);
      };
      const timer = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === Events.Disconnect) this.up = false;
      else if (status.type === Events.Reconnect) {
        this.up = true;
        for (const waiter of [...this.waiters]) waiter();
      }
    }
  }
}
