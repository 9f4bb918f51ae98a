/**
 * A seeded pseudo-random generator (mulberry32): 32 bits of state, one multiply-xorshift round
 * per draw. Not for cryptography; good enough to spread prompts and arrivals, and the same seed
 * gives the same sequence on every machine, so a bench run can be repeated exactly.
 */
export class Prng {
  #state: number

  constructor(seed: number) {
    this.#state = seed >>> 0
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0
    let z = this.#state
    z = Math.imul(z ^ (z >>> 15), z | 1)
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61)
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296
  }

  /** An exponentially distributed float with the given mean (Poisson inter-arrival times). */
  exponential(mean: number): number {
    // 1 - next() is in (0, 1]: the log is finite.
    return -Math.log(1 - this.next()) * mean
  }
}
