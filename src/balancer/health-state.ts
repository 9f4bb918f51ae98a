/**
 * One instance's health, from two sources (Caddy's and Envoy's model):
 *
 * - active checks (`GET /api/version` every `health.interval`): `unhealthyAfter` failures in a row
 *   mark the instance unhealthy, `healthyAfter` passes bring it back;
 * - real traffic (passive): `ejectAfter` failures in a row eject it for `ejectionTime x n`
 *   (n: ejections in a row, capped at `maxEjectionTime`); when that time is up one request is let
 *   through (half-open) and its outcome closes the circuit or ejects again.
 *
 * A recovered instance ramps up (slow start): its weight factor grows from 10% to 100% over
 * `slowStartMs`. Pure logic with the time passed in, so tests drive it without timers.
 */
import type { HealthConfig } from '../config/config.js'

export type HealthStateName = 'healthy' | 'unhealthy' | 'ejected' | 'half_open'

export interface HealthRules extends Pick<HealthConfig, 'unhealthyAfter' | 'healthyAfter' | 'ejectAfter' | 'ejectionTimeMs' | 'maxEjectionTimeMs'> {
  readonly slowStartMs: number
}

/** Called once per state change, with why. */
export type HealthListener = (from: HealthStateName, to: HealthStateName, reason: string) => void

const SLOW_START_FLOOR = 0.1

export class HealthState {
  #rules: HealthRules
  readonly #onChange: HealthListener
  /** What active checks say. Instances start up: traffic is not held back until a first check. */
  #up = true
  #checkFailures = 0
  #checkPasses = 0
  #failuresInRow = 0
  #ejectedUntil = 0
  #ejectionsInRow = 0
  #lastEjectionEnd = 0
  #halfOpen = false
  #probing = false
  #recoveredAt = -Infinity
  #name: HealthStateName = 'healthy'
  /** Time of the last active check, 0 before the first. */
  lastCheckAt = 0
  /** Outcome of the last active check. */
  lastCheckOk: boolean | undefined

  constructor(rules: HealthRules, onChange: HealthListener) {
    this.#rules = rules
    this.#onChange = onChange
  }

  /**
   * New thresholds from a reloaded configuration; the counts so far are kept and the new
   * thresholds apply from the next check or failure on.
   */
  setRules(rules: HealthRules): void {
    this.#rules = rules
  }

  /** The state now; an ejection whose time is up turns half-open here. */
  state(now: number): HealthStateName {
    if (this.#ejectedUntil !== 0 && now >= this.#ejectedUntil) {
      this.#ejectedUntil = 0
      this.#lastEjectionEnd = now
      this.#halfOpen = true
      this.#probing = false
      this.#update('ejection time is up: one request may test it')
    }
    return this.#name
  }

  /** Whether a request may be sent here now (a half-open instance takes one at a time). */
  admits(now: number): boolean {
    const state = this.state(now)
    return state === 'healthy' || (state === 'half_open' && !this.#probing)
  }

  /** A request was sent here: in half-open state, it is the probe. */
  onDispatch(): void {
    if (this.#halfOpen) this.#probing = true
  }

  /** A request here succeeded (an answer that is not a server failure). */
  onSuccess(now: number): void {
    this.#failuresInRow = 0
    if (this.#halfOpen) {
      this.#halfOpen = false
      this.#probing = false
      this.#recoveredAt = now
      this.#update('a request succeeded after the ejection')
    }
    if (this.#ejectionsInRow > 0 && now - this.#lastEjectionEnd >= this.#rules.maxEjectionTimeMs) this.#ejectionsInRow = 0
  }

  /** A request here failed (refused, reset, timeout, 5xx, 503 busy, 429). */
  onFailure(now: number, reason: string): void {
    this.#failuresInRow++
    const state = this.state(now)
    if (state === 'half_open') return this.#eject(now, `the test request failed: ${reason}`)
    const { ejectAfter } = this.#rules
    if (state === 'healthy' && ejectAfter > 0 && this.#failuresInRow >= ejectAfter) {
      this.#eject(now, `${this.#failuresInRow} failures in a row, the last: ${reason}`)
    }
  }

  /** A request here ended with neither verdict (the client left): frees the half-open slot. */
  onNeutral(): void {
    this.#probing = false
  }

  /**
   * The outcome of one active check; `unreachable`: nothing listens there (connection refused or
   * reset, no such host). An instance is only assumed up until its first check: one unreachable
   * then is unhealthy at once, not `unhealthyAfter` intervals later, so stats, probes and metrics
   * agree from the start. Any other failure (an error status, a timeout) gets the usual
   * `unhealthyAfter`.
   */
  onCheck(ok: boolean, now: number, reason = '', unreachable = false): void {
    const first = this.lastCheckOk === undefined
    this.lastCheckAt = now
    this.lastCheckOk = ok
    if (ok) {
      this.#checkFailures = 0
      this.#checkPasses++
      if (!this.#up && this.#checkPasses >= this.#rules.healthyAfter) {
        this.#up = true
        this.#failuresInRow = 0
        this.#recoveredAt = now
        this.#update(`${this.#checkPasses} health check(s) passed`)
      }
    } else {
      this.#checkPasses = 0
      this.#checkFailures++
      if (this.#up && ((first && unreachable) || this.#checkFailures >= this.#rules.unhealthyAfter)) {
        this.#up = false
        const why = this.#checkFailures < this.#rules.unhealthyAfter ? `unreachable at the first health check: ${reason}` : `${this.#checkFailures} health check(s) failed, the last: ${reason}`
        this.#update(why)
      }
    }
  }

  /** Weight multiplier for slow start: 0.1 right after a recovery, 1 once `slowStartMs` has passed. */
  weightFactor(now: number): number {
    const since = now - this.#recoveredAt
    const { slowStartMs } = this.#rules
    if (slowStartMs <= 0 || since >= slowStartMs) return 1
    return Math.max(SLOW_START_FLOOR, since / slowStartMs)
  }

  /** When the current ejection ends (0: not ejected). */
  get ejectedUntil(): number {
    return this.#ejectedUntil
  }

  #eject(now: number, reason: string): void {
    this.#ejectionsInRow++
    const { ejectionTimeMs, maxEjectionTimeMs } = this.#rules
    this.#ejectedUntil = now + Math.min(ejectionTimeMs * this.#ejectionsInRow, maxEjectionTimeMs)
    this.#failuresInRow = 0
    this.#halfOpen = false
    this.#probing = false
    this.#update(reason)
  }

  #update(reason: string): void {
    const next: HealthStateName = !this.#up
      ? 'unhealthy'
      : this.#ejectedUntil !== 0
        ? 'ejected'
        : this.#halfOpen
          ? 'half_open'
          : 'healthy'
    if (next === this.#name) return
    const from = this.#name
    this.#name = next
    this.#onChange(from, next, reason)
  }
}
