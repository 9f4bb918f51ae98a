/**
 * Active health checks: every `health.interval`, `GET /api/version` on each instance with a
 * timeout; the outcome goes to the instance's HealthState, which applies the thresholds. The
 * first round runs at start, every instance at once, and each instance's first outcome is logged
 * (up, or down and why). Never throws: a failed check is an outcome, not an error.
 */
import type { Logger } from 'pino'
import type { HealthConfig } from '../config/config.js'
import type { Instance } from './instance.js'
import { Poller } from './poller.js'

export class HealthChecker {
  /** The instances to check, read at every round (a reload changes them). */
  readonly #instances: () => readonly Instance[]
  #config: HealthConfig
  readonly #now: () => number
  readonly #poller: Poller
  readonly #logger: Logger | undefined

  /** `logger`: where each instance's first outcome is reported (undefined: nowhere). */
  constructor(instances: () => readonly Instance[], config: HealthConfig, now: () => number = Date.now, logger?: Logger) {
    this.#instances = instances
    this.#config = config
    this.#now = now
    this.#logger = logger
    this.#poller = new Poller(() => Promise.all(this.#instances().map((i) => this.check(i))).then(() => undefined), config.intervalMs)
  }

  /** Runs a first round now, then one every interval. */
  start(): void {
    this.#poller.start()
  }

  /** Whether `start` was called (and not `close`). */
  get started(): boolean {
    return this.#poller.started
  }

  /** New settings from a reload: a changed interval restarts the timer (the next round after the new interval). */
  reconfigure(config: HealthConfig): void {
    this.#config = config
    this.#poller.setInterval(config.intervalMs)
  }

  /** Checks every instance once (a round already running is shared). */
  checkAll(): Promise<void> {
    return this.#poller.run()
  }

  /** Checks one instance and records the outcome. */
  async check(instance: Instance): Promise<void> {
    if (this.#poller.closed || instance.retired) return
    const reason = await probe(instance, this.#config.timeoutMs)
    if (this.#poller.closed || instance.retired) return
    const first = instance.health.lastCheckOk === undefined
    instance.health.onCheck(reason === undefined, this.#now(), reason, reason !== undefined && NOTHING_THERE.has(reason))
    if (!first || this.#logger === undefined) return
    if (reason === undefined) this.#logger.info({ instance: instance.name, url: instance.url }, 'instance up: first health check passed')
    else this.#logger.warn({ instance: instance.name, url: instance.url, err: reason }, 'instance down: first health check failed')
  }

  /** Stops the checks; waits for a round in progress. Idempotent. */
  close(): Promise<void> {
    return this.#poller.close()
  }
}

/**
 * Probe failures that say nothing listens there (refused, reset, no such host or route), as
 * opposed to a timeout (maybe a slow start) or an error status (alive): an instance failing its
 * first check with one of these is unhealthy at once.
 */
const NOTHING_THERE: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH'])

/** undefined when the instance answered `/api/version` with 200 within `timeoutMs`, else why not. */
export async function probe(instance: Instance, timeoutMs: number, userAgent = 'corral (health check)'): Promise<string | undefined> {
  try {
    const res = await instance.pool.request({
      method: 'GET',
      path: '/api/version',
      headers: { 'user-agent': userAgent },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    })
    await res.body.dump()
    return res.statusCode === 200 ? undefined : `status ${res.statusCode}`
  } catch (err) {
    const code = (err as { code?: unknown }).code
    if ((err as Error).name === 'TimeoutError' || (err as Error).name === 'AbortError') return `no answer within ${timeoutMs} ms`
    return typeof code === 'string' ? code : (err as Error).message
  }
}
