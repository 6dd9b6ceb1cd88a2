import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * One root logger per process; each stage takes a child ({ stage }) and each request line
 * carries its requestId. Bodies and credentials are never logged: the redact list is the net
 * under that rule, not the rule itself.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      redact: {
        paths: ['headers.authorization', 'headers.Authorization', 'nats.token', 'nats.pass'],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination({ sync: false }),
  );
}
