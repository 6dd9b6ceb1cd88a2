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
      // "level":"info" and "time":"2026-01-31T12:00:00.000Z": readable by a person, and by a log
      // store without a table of pino's level numbers or a guess at the epoch's unit.
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['headers.authorization', 'headers.Authorization', 'nats.token', 'nats.pass'],
        censor: '[redacted]',
      },
    },
    destination ?? pino.destination({ sync: false }),
  );
}
