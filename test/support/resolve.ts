import type { LookupAddress } from 'node:dns';
import { Agent } from 'undici';

type LookupCallback = (err: Error | null, address: string | LookupAddress[], family?: number) => void;

/**
 * An HTTP agent that resolves every name to 127.0.0.1, as `curl --resolve` does: Node's resolver
 * does not map `*.localhost` to loopback, so a client calling `http://<functionId>.localhost:<port>`
 * needs this to reach the gateway while still sending that Host.
 */
export function loopbackAgent(): Agent {
  return new Agent({
    connect: {
      lookup: (_host: string, options: { all?: boolean }, callback: LookupCallback) =>
        options.all ? callback(null, [{ address: '127.0.0.1', family: 4 }]) : callback(null, '127.0.0.1', 4),
    } as never,
  });
}
