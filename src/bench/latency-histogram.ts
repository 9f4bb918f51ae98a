/**
 * Latencies in logarithmic buckets: bucket i holds values in (γ^(i-1), γ^i] milliseconds·1000
 * (microseconds) with γ = 1.01, so any percentile is reported within 0.5 % of a recorded value
 * (the bucket's geometric middle is at most √γ away from both ends). Memory is bounded whatever the
 * run's length: about 2,300 counters cover 1 µs to 10 hours, where an exact recorder would keep
 * every sample (an open-loop run at 1,000 req/s for an hour is 3.6 M of them). Half a percent is
 * far below what separates two runs of the same load. Min, max, count and sum are exact;
 * percentiles are clamped to [min, max], so a single value or a constant series is exact too.
 */

const GAMMA = 1.01
const LOG_GAMMA = Math.log(GAMMA)
/** Values are bucketed in microseconds; anything under 1 µs goes to bucket 0. */
const MAX_US = 10 * 3600 * 1e6
const BUCKETS = Math.ceil(Math.log(MAX_US) / LOG_GAMMA) + 2

/** Percentiles and extremes of one latency series, in milliseconds. */
export interface LatencySummary {
  count: number
  min: number
  mean: number
  p50: number
  p95: number
  p99: number
  max: number
}

export class LatencyHistogram {
  readonly #counts = new Uint32Array(BUCKETS)
  #count = 0
  #sum = 0
  #min = Infinity
  #max = -Infinity

  get count(): number {
    return this.#count
  }

  /** Records one latency in milliseconds. */
  record(ms: number): void {
    if (!(ms >= 0)) return
    const us = ms * 1000
    const i = us <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log(us) / LOG_GAMMA))
    this.#counts[i]!++
    this.#count++
    this.#sum += ms
    if (ms < this.#min) this.#min = ms
    if (ms > this.#max) this.#max = ms
  }

  /**
   * The nearest-rank percentile (the smallest recorded value with at least p % of the values at or
   * below it), within 0.5 %; 0 when nothing was recorded.
   */
  percentile(p: number): number {
    if (this.#count === 0) return 0
    const rank = Math.max(1, Math.ceil((p / 100) * this.#count))
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!
      if (seen >= rank) {
        const middleUs = i === 0 ? 1 : Math.pow(GAMMA, i - 0.5)
        return Math.min(this.#max, Math.max(this.#min, middleUs / 1000))
      }
    }
    return this.#max
  }

  summary(): LatencySummary {
    if (this.#count === 0) return { count: 0, min: 0, mean: 0, p50: 0, p95: 0, p99: 0, max: 0 }
    return {
      count: this.#count,
      min: round(this.#min),
      mean: round(this.#sum / this.#count),
      p50: round(this.percentile(50)),
      p95: round(this.percentile(95)),
      p99: round(this.percentile(99)),
      max: round(this.#max),
    }
  }
}

/** Milliseconds to the microsecond. */
const round = (ms: number): number => Math.round(ms * 1000) / 1000
