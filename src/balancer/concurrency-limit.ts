/**
 * Learned concurrency: how many requests of one kind (generation, embedding) an instance runs at
 * once before further ones only queue behind them (its OLLAMA_NUM_PARALLEL, which Ollama does
 * not expose), learned from each answer's time to first byte against the number of requests
 * corral had in flight there when it sent it.
 *
 * The signal is queueing, as in Envoy's adaptive concurrency filter and Netflix's
 * concurrency-limits (Vegas, Gradient2): a request sent when `k` were in flight (itself
 * included) to an instance with `s < k` slots waits for `k - s` of the requests ahead to end;
 * those end staggered, one every `service / (s + 1)`, so its wait beyond the no-load latency is
 * about `w = (k - s) / (s + 1)` service times, and `s = (k - w) / (1 + w)`. For each answer:
 *
 * - `s` within half a slot of `k` (no wait): the instance runs at least `k` at once.
 * - otherwise it runs about `s`.
 *
 * At the limit, answers are judged four at a time on their mean wait (a slot that frees just in
 * time looks like a free one). Four without waiting raise the limit: doubling until the first
 * queueing (like TCP's slow start), then one probe higher every 4 to 32 answers (the interval
 * doubles on each failed probe). Queueing above the highest level seen not queueing sends the
 * limit back to that level (or `s`, if higher); queueing at or below it, three answers in a row,
 * means the instance changed (fewer slots, or slower): the limit drops to `s` (at most halving at
 * once: a stall of the machine looks like queueing too) and climbs again from there.
 *
 * The no-load latency is the lowest seen, moved by the answers sent alone (which cannot have
 * queued behind corral's own traffic), so an instance that slows down or speeds up moves it.
 * Everything is a few numbers; an update allocates nothing.
 */

/** The limit before any answer was seen: low enough to see queueing early, doubled while none is seen. */
export const INITIAL_CONCURRENCY = 2
/** The most a learned limit grows to (a cap set in the configuration may be higher). */
export const MAX_LEARNED_CONCURRENCY = 64
/** ms of a wait beyond the no-load latency that are timer and scheduling noise, not queueing. */
const NOISE_MS = 5
/** ...plus this share of the service time (a request that varies a little, a short stall). */
const NOISE_SHARE = 0.02
/** Weight of an answer sent alone in the no-load latency. */
const ALONE_ALPHA = 0.5
/** Answers at the limit between two probes above the level known good: starts here, doubles on each failed probe. */
const PROBE_EVERY_MIN = 4
const PROBE_EVERY_MAX = 32
/** Answers at the limit whose mean wait decides whether it rises. */
const CONFIRM = 4
/** Answers in a row queued at or below the level known good before the limit drops to the estimate. */
const DOUBTS = 3

/** The learned concurrency of one kind of work on one instance (see the file's header). */
export class ConcurrencyLimit {
  #value = INITIAL_CONCURRENCY
  /** No-load latency (ms to first byte with a free slot); 0 until the first answer. */
  #baseMs = 0
  #baseKnown = false
  /** Highest level seen not queueing since the instance last queued at or below it. */
  #good = 0
  #slowStart = true
  /** Answers at the limit still to come before the next probe above `#good`. */
  #probeIn = 0
  #probeEvery = PROBE_EVERY_MIN
  /** Answers in a row that queued at or below the level known good. */
  #doubts = 0
  /** Answers at the limit since the last decision, and the sum of their waits (in service times). */
  #atLimit = 0
  #sumW = 0
  /** Answers learned from since start. */
  samples = 0

  /** The learned slot count now. */
  get value(): number {
    return this.#value
  }

  /** The no-load latency in ms (0 before the first answer). */
  get baseMs(): number {
    return this.#baseMs
  }

  /**
   * Learns from one answer. `level`: requests of this kind corral had in flight at the instance
   * when it sent this one, itself included. `latencyMs`: ms until the answer's first token (a
   * generation's duration minus Ollama's eval_duration; an embedding's duration). `workMs`: the
   * rest of its service time (eval_duration; 0 for an embedding). Returns the ms of `latencyMs`
   * that were queueing at the instance (beyond the no-load latency and the noise allowance).
   */
  update(level: number, latencyMs: number, workMs: number): number {
    this.samples++
    if (!this.#baseKnown) {
      this.#baseMs = latencyMs
      this.#baseKnown = true
    }
    const service = Math.max(1, this.#baseMs + workMs)
    // Timer and scheduling noise is not queueing.
    const w = level <= 1 ? 0 : Math.max(0, latencyMs - this.#baseMs - NOISE_MS - NOISE_SHARE * service) / service
    // The no-load latency: the lowest seen, and what answers sent alone (which cannot have
    // queued behind corral's own traffic) say, so an instance that slows down moves it too.
    if (latencyMs < this.#baseMs) this.#baseMs = latencyMs
    else if (level <= 1) this.#baseMs += ALONE_ALPHA * (latencyMs - this.#baseMs)
    this.#learn(level, w)
    return w > 0 ? w * service : 0
  }

  #learn(level: number, w: number): void {
    const value = this.#value
    if (level > value) {
      // Sent under an older, higher limit: queueing there only lowers it.
      const slots = slotsFor(level, w)
      if (slots < level - 0.5) this.#value = Math.min(value, Math.max(this.#good, Math.round(slots), 1))
      return
    }
    if (level < value) {
      const slots = slotsFor(level, w)
      if (slots > level - 0.5) this.#doubts = 0
      else if (level > this.#good) {
        // Queueing above the level known good (the limit rose past it): back to that.
        this.#slowStart = false
        this.#value = Math.max(this.#good, Math.round(slots), 1)
      } else if (++this.#doubts >= DOUBTS) this.#changed(slots)
      return
    }
    // At the limit: judged on the mean wait of a few answers (one slot freeing just in time
    // looks like a free one).
    this.#sumW += w
    if (++this.#atLimit < CONFIRM) return
    const slots = slotsFor(level, this.#sumW / this.#atLimit)
    this.#sumW = 0
    this.#atLimit = 0
    if (slots > level - 0.5) {
      this.#doubts = 0
      if (level > this.#good) {
        this.#good = level
        this.#probeEvery = PROBE_EVERY_MIN
      }
      if (this.#slowStart) this.#raise(value * 2)
      // Up to the level known good at once; beyond it, one probe every so many answers.
      else if (value < this.#good || --this.#probeIn <= 0) this.#raise(value + 1)
    } else if (level > this.#good) {
      // A probe above the level known good queued: back to it, probe again later.
      this.#slowStart = false
      this.#value = Math.max(this.#good, Math.round(slots), 1)
      this.#probeIn = this.#probeEvery
      this.#probeEvery = Math.min(PROBE_EVERY_MAX, this.#probeEvery * 2)
    } else {
      this.#changed(slots)
    }
  }

  #raise(to: number): void {
    this.#value = Math.min(MAX_LEARNED_CONCURRENCY, to)
    this.#sumW = 0
    this.#atLimit = 0
  }

  /** Queueing where there was none: fewer slots now, or slower ones. */
  #changed(slots: number): void {
    this.#slowStart = false
    this.#doubts = 0
    this.#good = 0
    this.#sumW = 0
    this.#atLimit = 0
    // At most halved at once: a stall of the machine (or of corral) looks like queueing too.
    this.#value = Math.max(1, Math.min(this.#value, Math.max(Math.round(slots), Math.ceil(this.#value / 2))))
    this.#probeIn = 0
    this.#probeEvery = PROBE_EVERY_MIN
  }
}

/**
 * Slots that explain a wait of `w` service times at in-flight level `k`, the requests ahead
 * ending staggered (one every service / (slots + 1)): k - slots of them must end first.
 */
function slotsFor(k: number, w: number): number {
  return (k - w) / (1 + w)
}
