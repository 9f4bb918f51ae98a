/**
 * Active health checks: every `health.interval`, `GET /api/version` on each instance with a
 * timeout; the outcome goes to the instance's HealthState, which applies the thresholds. The
 * first round runs at start. Never throws: a failed check is an outcome, not an error.
 */
import type { HealthConfig } from '../config/config.js'
import type { Instance } from './instance.js'

export class HealthChecker {
  /** The instances to check, read at every round (a reload changes them). */
  readonly #instances: () => readonly Instance[]
  #config: HealthConfig
  readonly #now: () => number
  #timer: NodeJS.Timeout | undefined
  #round: Promise<void> | undefined
  #closed = false

  constructor(instances: () => readonly Instance[], config: HealthConfig, now: () => number = Date.now) {
    this.#instances = instances
    this.#config = config
    this.#now = now
  }

  /** Runs a first round now, then one every interval. */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return
    void this.checkAll()
    this.#schedule()
  }

  /** Whether `start` was called (and not `close`). */
  get started(): boolean {
    return this.#timer !== undefined && !this.#closed
  }

  /** New settings from a reload: a changed interval restarts the timer (the next round after the new interval). */
  reconfigure(config: HealthConfig): void {
    const intervalChanged = config.intervalMs !== this.#config.intervalMs
    this.#config = config
    if (intervalChanged && this.started) {
      clearInterval(this.#timer)
      this.#schedule()
    }
  }

  /** Checks every instance once (a round already running is shared). */
  checkAll(): Promise<void> {
    this.#round ??= Promise.all(this.#instances().map((i) => this.check(i))).then(() => {
      this.#round = undefined
    })
    return this.#round
  }

  /** Checks one instance and records the outcome. */
  async check(instance: Instance): Promise<void> {
    if (this.#closed || instance.retired) return
    const reason = await probe(instance, this.#config.timeoutMs)
    if (this.#closed || instance.retired) return
    instance.health.onCheck(reason === undefined, this.#now(), reason)
  }

  #schedule(): void {
    this.#timer = setInterval(() => void this.checkAll(), this.#config.intervalMs)
    this.#timer.unref()
  }

  /** Stops the checks; waits for a round in progress. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    await this.#round
  }
}

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
