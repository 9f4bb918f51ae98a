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

/** Writes out buffered log lines; resolves when they are written (call before exit). */
export function flushLogger(logger: Logger): Promise<void> {
  return new Promise((resolve) => {
    try {
      logger.flush(() => resolve())
    } catch {
      resolve() // the destination is already closed
    }
  })
}
