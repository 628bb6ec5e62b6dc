import pino from 'pino';

/**
 * What every part logs through: structured fields first, then the message.
 * The service passes its pino logger; tests pass a recorder.
 */
export interface Logger {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export type ServiceLogger = pino.Logger;

/**
 * Structured JSON logs on stdout. Writes are asynchronous (sonic-boom), so a
 * slow terminal or journald never holds the event loop; flushed on exit.
 */
export function createLogger(level: string): ServiceLogger {
  const dest = pino.destination({ dest: 1, sync: false, minLength: 0 });
  const log = pino({ level, base: { svc: 'stagebox' }, timestamp: pino.stdTimeFunctions.isoTime }, dest);
  return log;
}

export function flushLogger(log: ServiceLogger): void {
  try {
    log.flush();
  } catch {
    // Flushing an already closed destination at exit is harmless.
  }
}
