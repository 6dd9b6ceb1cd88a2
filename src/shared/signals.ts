import type { Logger } from './log.js';

/** A repeat of SIGINT within this window is the same Ctrl-C delivered twice (see below). */
const SAME_SIGNAL_MS = 500;

/**
 * The only place that listens to the process. The first SIGTERM or SIGINT starts a graceful
 * stop; a second one (for SIGINT, half a second or more later) means "now": exit 1 at once. An error nobody
 * caught also ends the process with 1, after logging it, because state after it cannot be trusted.
 */
export function installSignalHandlers(onFirstSignal: (signal: NodeJS.Signals) => void, log: Logger): () => void {
  let receivedAt: number | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    // One Ctrl-C often arrives twice: the terminal signals the whole process group, and npm
    // (npm start, npx) forwards what it got to its child. A repeat this close is the same one.
    // A SIGTERM is sent to one process (kill, Kubernetes), so a second one always counts.
    if (signal === 'SIGINT' && receivedAt !== undefined && Date.now() - receivedAt < SAME_SIGNAL_MS) return;
    if (receivedAt !== undefined) {
      log.warn({ signal }, 'second signal; exiting now');
      log.flush?.();
      process.exit(1);
    }
    receivedAt = Date.now();
    log.info({ signal }, 'signal received; shutting down gracefully (send it again to exit at once)');
    onFirstSignal(signal);
  };
  const onFatal = (err: unknown) => {
    log.fatal(
      { err: err instanceof Error ? { message: err.message, stack: err.stack } : String(err) },
      'uncaught error; exiting',
    );
    log.flush?.();
    process.exit(1);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    process.off('uncaughtException', onFatal);
    process.off('unhandledRejection', onFatal);
  };
}

/**
 * Called once a command has closed everything it opened: if a handle some library leaked keeps
 * the event loop alive, the process still ends (a pod must not hang in Terminating).
 */
export function exitSoonIfStillAlive(graceMs = 5_000): void {
  setTimeout(() => process.exit(process.exitCode ?? 0), graceMs).unref();
}
