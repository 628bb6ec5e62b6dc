import pino from 'pino';

export type Logger = pino.Logger;

/**
 * Structured JSON logs on stdout. Writes are asynchronous (sonic-boom), so a
 * slow terminal or journald never holds the event loop; flushed on exit.
 */
export function createLogger(level: string): Logger {
  const dest = pino.destination({ dest: 1, sync: false, minLength: 0 });
  const log = pino({ level, base: { svc: 'stagebox' }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
  return log;
}

export function flushLogger(log: Logger): void {
  try {
    log.flush();
  } catch {
    // Flushing an already closed destination at exit is harmless.
  }
}
