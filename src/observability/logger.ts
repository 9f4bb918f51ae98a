import { pino, type DestinationStream, type Logger } from 'pino'

export type { Logger }

/**
 * The process logger: JSON lines on stdout (or `destination`, which tests use to capture and
 * parse what was logged). Writes are asynchronous, off the request path, and flushed on close.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const dest = destination ?? pino.destination({ dest: 1, sync: false, minLength: 0 })
  return pino(
    {
      level,
      base: { service: 'corral' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    dest,
  )
}

/** Flushes buffered log lines (before exit). */
export function flushLogger(logger: Logger): void {
  try {
    logger.flush()
  } catch {
    // the destination may already be closed
  }
}
