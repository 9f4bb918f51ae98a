import type { Prng } from './prng.js'

/**
 * Draws ranks 0..n-1 with probability proportional to 1 / (rank + 1)^s: rank 0 is the most asked
 * question, as in real query logs (s around 1). The cumulative weights are computed once (n
 * floats); each draw is one PRNG call and a binary search.
 */
export class ZipfSampler {
  readonly #cdf: Float64Array
  readonly #rng: Prng

  constructor(n: number, s: number, rng: Prng) {
    if (!Number.isInteger(n) || n < 1) throw new RangeError('n must be a positive integer')
    if (!(s > 0)) throw new RangeError('s must be > 0')
    this.#rng = rng
    this.#cdf = new Float64Array(n)
    let total = 0
    for (let k = 0; k < n; k++) {
      total += 1 / Math.pow(k + 1, s)
      this.#cdf[k] = total
    }
    for (let k = 0; k < n; k++) this.#cdf[k]! /= total
  }

  /** The probability of `rank`. */
  probability(rank: number): number {
    return this.#cdf[rank]! - (rank === 0 ? 0 : this.#cdf[rank - 1]!)
  }

  next(): number {
    const u = this.#rng.next()
    let lo = 0
    let hi = this.#cdf.length - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.#cdf[mid]! > u) hi = mid
      else lo = mid + 1
    }
    return lo
  }
}
