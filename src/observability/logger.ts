import { pino, type DestinationStream, type Logger } from 'pino'
import { PinoPretty } from 'pino-pretty'

export type { Logger }

export interface LoggerOptions {
  /** Human-readable lines instead of JSON. Default: when stdout is a terminal. */
  pretty?: boolean
}

/** Header values never written to a log, wherever they appear. */
const REDACTED = ['authorization', 'headers.authorization', '*.headers.authorization', 'proxy-authorization', 'headers["proxy-authorization"]']

/**
 * The process logger: JSON lines on stdout (or `destination`, which tests use to capture and
 * parse what was logged), human-readable lines when stdout is a terminal. Writes are
 * asynchronous, off the request path, and flushed on close. `Authorization` headers are
 * redacted should any log line ever carry them; request bodies and prompts are never logged.
 */
export function createLogger(level: string, destination?: DestinationStream, options: LoggerOptions = {}): Logger {
  const pretty = options.pretty ?? (destination === undefined && process.stdout.isTTY === true)
  const out = destination ?? pino.destination({ dest: 1, sync: false, minLength: 0 })
  const dest = pretty
    ? PinoPretty({ destination: out, colorize: destination === undefined, translateTime: 'SYS:HH:MM:ss.l', ignore: 'service,pid,hostname' })
    : out
  return pino(
    {
      level,
      base: { service: 'corral' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACTED, censor: '[redacted]' },
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
