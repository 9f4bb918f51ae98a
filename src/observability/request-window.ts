/**
 * Request counts and latencies over the last minute, for the stats endpoint: 60 one-second slots,
 * each with a log-scale latency histogram (4 buckets per doubling, about 19% resolution, 1 ms to
 * 10 min). Recording is two array writes; nothing is allocated per request.
 */
const SLOTS = 60
const BUCKETS = 80
const PER_DOUBLING = 4

export interface WindowSummary {
  requests: number
  errors: number
  requestsPerSecond: number
  p50Ms: number | null
  p95Ms: number | null
}

export class RequestWindow {
  readonly #now: () => number
  readonly #second = new Float64Array(SLOTS).fill(-1)
  readonly #counts = new Uint32Array(SLOTS)
  readonly #errors = new Uint32Array(SLOTS)
  readonly #histogram = new Uint32Array(SLOTS * BUCKETS)
  /** Since start. */
  requests = 0
  errors = 0

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  record(ms: number, failed: boolean): void {
    const second = Math.floor(this.#now() / 1000)
    const slot = second % SLOTS
    if (this.#second[slot] !== second) {
      this.#second[slot] = second
      this.#counts[slot] = 0
      this.#errors[slot] = 0
      this.#histogram.fill(0, slot * BUCKETS, (slot + 1) * BUCKETS)
    }
    this.#counts[slot]!++
    this.requests++
    if (failed) {
      this.#errors[slot]!++
      this.errors++
    }
    const bucket = ms <= 1 ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log2(ms) * PER_DOUBLING))
    this.#histogram[slot * BUCKETS + bucket]!++
  }

  /** The last 60 seconds (the current second included). */
  summary(): WindowSummary {
    const now = Math.floor(this.#now() / 1000)
    const merged = new Uint32Array(BUCKETS)
    let requests = 0
    let errors = 0
    for (let slot = 0; slot < SLOTS; slot++) {
      if (now - this.#second[slot]! >= SLOTS) continue
      requests += this.#counts[slot]!
      errors += this.#errors[slot]!
      for (let b = 0; b < BUCKETS; b++) merged[b]! += this.#histogram[slot * BUCKETS + b]!
    }
    return {
      requests,
      errors,
      requestsPerSecond: Math.round((requests / SLOTS) * 100) / 100,
      p50Ms: quantile(merged, requests, 0.5),
      p95Ms: quantile(merged, requests, 0.95),
    }
  }
}

/** The upper bound of the bucket holding the q-quantile, rounded to 0.1 ms; null without data. */
function quantile(histogram: Uint32Array, total: number, q: number): number | null {
  if (total === 0) return null
  const rank = Math.ceil(q * total)
  let seen = 0
  for (let b = 0; b < histogram.length; b++) {
    seen += histogram[b]!
    if (seen >= rank) return Math.round(2 ** (b / PER_DOUBLING) * 10) / 10
  }
  return null
}
