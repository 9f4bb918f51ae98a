/**
 * A peak-sensitive, time-decayed moving average (Finagle's and Linkerd's peak-EWMA): a sample
 * above the current value replaces it at once, so an instance that slows down looks slow on the
 * next pick; samples below it pull it down with a weight that depends on the time since the
 * previous sample (time constant `decayMs`), so a burst of fast answers cannot erase a slowdown
 * in a few milliseconds and a quiet instance's history fades. Two numbers, no allocation.
 */
export class PeakEwma {
  readonly #decayMs: number
  #value = 0
  #at = 0
  #seen = false

  constructor(decayMs: number) {
    this.#decayMs = decayMs
  }

  /** Whether any sample arrived yet. */
  get known(): boolean {
    return this.#seen
  }

  /** The current estimate; 0 before the first sample. */
  get value(): number {
    return this.#value
  }

  /**
   * How much of the estimate still holds at `now`: 1 just after a sample, decaying with the time
   * since (time constant `decayMs`); 0 before any. A reader draws an aged estimate toward what it
   * would assume without data, as Finagle's peak-EWMA decays on read, so an instance once slow
   * and left alone since is tried again.
   */
  freshness(now: number): number {
    return this.#seen ? Math.exp(-Math.max(0, now - this.#at) / this.#decayMs) : 0
  }

  update(sample: number, now: number): void {
    if (!this.#seen || sample >= this.#value) {
      this.#value = sample
    } else {
      const w = Math.exp(-Math.max(0, now - this.#at) / this.#decayMs)
      this.#value = this.#value * w + sample * (1 - w)
    }
    this.#seen = true
    this.#at = now
  }
}

/**
 * A penalty that decays exponentially: each `add` stacks on what is left of the previous ones.
 * Used for recent failures, so an instance that failed a moment ago scores worse and recovers its
 * standing on its own.
 */
export class DecayingPenalty {
  #decayMs: number
  #value = 0
  #at = 0

  constructor(decayMs: number) {
    this.#decayMs = decayMs
  }

  /** A new time constant (reload); what is left of the penalty now decays with it. */
  setDecayMs(decayMs: number, now: number): void {
    this.#value = this.valueAt(now)
    this.#at = now
    this.#decayMs = decayMs
  }

  add(amount: number, now: number): void {
    this.#value = this.valueAt(now) + amount
    this.#at = now
  }

  valueAt(now: number): number {
    if (this.#value === 0) return 0
    return this.#value * Math.exp(-Math.max(0, now - this.#at) / this.#decayMs)
  }
}
