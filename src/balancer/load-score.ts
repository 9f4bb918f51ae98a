/**
 * The load-score policy: the instance where a new request would finish soonest.
 *
 * For an instance with a free slot:
 *   score = (service x (1 + inFlight / slots) + cold-model penalty + failure penalty) / (weight x slow-start factor)
 * For an instance at its cap, the time until its next slot frees (from the expected ends of the
 * requests in flight there) plus the requests already queued ahead are added: waiting for a fast
 * instance can beat a slow free one, and `place` then says "wait".
 *
 * - `service` is the predicted time of this request on this instance: its peak-EWMA time to
 *   first byte plus the request's expected answer length (its `num_predict`/`max_tokens` when
 *   set, else the fleet's average from Ollama's eval_count) times its peak-EWMA ms per token. An
 *   instance without data yet is given the mean of those with data, or a fixed prior when none
 *   has any, so a new instance is tried rather than avoided.
 * - `inFlight / slots` is the work already running there in units of its parallel slots
 *   (learned per kind of work, or `max_concurrency` when set: OLLAMA_NUM_PARALLEL).
 * - The cold-model penalty applies when discovery says the model is not loaded there.
 * - Estimates age: an instance's service time is drawn toward the fleet's mean with the time
 *   since it was last measured (peak-EWMA decay on read), so an instance once slow is tried again.
 * - Scores within 10 % of the best are ties (30 % between idle instances), and ties rotate:
 *   equal instances share the traffic, at low load too.
 * - The failure penalty decays; failures never update the timing averages, so a fast error makes
 *   an instance less attractive, never more.
 *
 * The lowest score wins; exact ties (idle fleets with no data) rotate, like round-robin. The scan
 * allocates nothing.
 */
import type { Instance, WorkKind } from './instance.js'
import { ELIGIBLE, FULL, type PickRequest, type SelectionPolicy } from './selection-policy.js'

export interface LoadScoreOptions {
  coldModelPenaltyMs: number
  /** Expected tokens of a generated answer, maintained by the balancer from Ollama's eval_count. */
  expectedTokens: () => number
}

/** Service time assumed when no instance has measured this kind of work yet, in ms. */
const PRIOR_MS: Readonly<Record<WorkKind, number>> = { generation: 1000, embedding: 50 }
/** Requests that run no model are only counted, not timed. */
const UNTIMED_MS = 1
/** A request's own token limit is trusted up to this multiple of the average answer (limits are often generous). */
const MAX_TOKENS_TRUST = 2
/**
 * Scores within this share of the best are ties, and ties rotate: equal instances measured a few
 * percent apart share the traffic at low load, so each one's health is known from real answers.
 */
const TIE_SHARE = 0.1
/**
 * Between idle instances the band is wider: at low load a few answers (one slow first answer on a
 * new connection) are all the estimates rest on, and only traffic refreshes them.
 */
const IDLE_TIE_SHARE = 0.3

export class LoadScorePolicy implements SelectionPolicy {
  readonly name = 'load-score'
  readonly #options: LoadScoreOptions
  #start = 0

  constructor(options: LoadScoreOptions) {
    this.#options = options
  }

  pick(instances: readonly Instance[], eligible: Uint8Array, request: PickRequest, now: number): Instance | undefined {
    const placed = this.place(instances, eligible, request, now, -1)
    return placed === 'wait' ? undefined : placed
  }

  /** `queueAhead` -1: only instances with a free slot are considered (never 'wait'). */
  place(instances: readonly Instance[], eligible: Uint8Array, request: PickRequest, now: number, queueAhead: number): Instance | 'wait' | undefined {
    const n = instances.length
    if (n === 0) return undefined
    const prior = this.#prior(instances, request.work)
    const tokens = this.#tokens(request)
    const start = this.#start
    this.#start = (start + 1) % n
    let best: Instance | undefined
    let bestScore = Infinity
    let bestFull = Infinity
    let releasesPerMs = 0
    for (let k = 0; k < n; k++) {
      const instance = instances[(start + k) % n]!
      const mark = eligible[instance.index]
      if (mark === ELIGIBLE) {
        const score = this.#score(instance, request, now, prior, tokens)
        const band = instance.inFlight === 0 && best !== undefined && best.inFlight === 0 ? IDLE_TIE_SHARE : TIE_SHARE
        if (score < bestScore * (1 - band)) {
          bestScore = score
          best = instance
        }
      } else if (mark === FULL && queueAhead >= 0 && request.work !== undefined) {
        const service = this.#agedServiceMs(instance, request.work, tokens, prior, now)
        releasesPerMs += instance.slots(request.work) / service
        // Waiting also costs the requests behind: the slot this one takes is a slot they wait
        // for. Counting its service twice (once for itself, once for them) sends short requests
        // to a slower free instance when the fast ones are saturated, instead of only when the
        // queue has grown long.
        const finish = (instance.nextFreeInMs(now) + 2 * service + this.#penalties(instance, request, now)) / this.#weight(instance, now)
        if (finish < bestFull) bestFull = finish
      }
    }
    if (bestFull === Infinity) return best
    // Requests queued ahead take the next slots first: one frees every 1/releasesPerMs ms.
    const waitScore = bestFull + (releasesPerMs > 0 ? queueAhead / releasesPerMs : 0)
    return best !== undefined && bestScore <= waitScore ? best : 'wait'
  }

  /** The instance's score for `request` now, as if it had a free slot. */
  score(instance: Instance, request: PickRequest, now: number, instances: readonly Instance[]): number {
    return this.#score(instance, request, now, this.#prior(instances, request.work), this.#tokens(request))
  }

  /** Predicted service time of one request of `work` on `instance` (`tokens` long), or undefined without data. */
  serviceMs(instance: Instance, work: WorkKind, tokens = this.#options.expectedTokens()): number | undefined {
    const timing = instance.timing[work]
    if (!timing.ttfbMs.known) return undefined
    const generating = work === 'generation' && timing.msPerToken.known
    return timing.ttfbMs.value + (generating ? tokens * timing.msPerToken.value : 0)
  }

  /** Predicted service time of `request` on `instance` with the fleet mean standing in for missing data. */
  expectedServiceMs(instance: Instance, request: PickRequest, instances: readonly Instance[]): number {
    if (request.work === undefined) return UNTIMED_MS
    return this.serviceMs(instance, request.work, this.#tokens(request)) ?? this.#prior(instances, request.work)
  }

  #score(instance: Instance, request: PickRequest, now: number, prior: number, tokens: number): number {
    const { work } = request
    const service = work === undefined ? UNTIMED_MS : this.#agedServiceMs(instance, work, tokens, prior, now)
    const slots = work === undefined ? 1 : instance.slots(work)
    const cost = service * (1 + instance.inFlight / slots) + this.#penalties(instance, request, now)
    return cost / this.#weight(instance, now)
  }

  /**
   * The instance's predicted service time with its estimates aged toward the fleet's mean
   * (`prior`) by the time since they were last measured (time constant: the averages' decay).
   */
  #agedServiceMs(instance: Instance, work: WorkKind, tokens: number, prior: number, now: number): number {
    const raw = this.serviceMs(instance, work, tokens)
    if (raw === undefined) return prior
    return prior + (raw - prior) * instance.timing[work].ttfbMs.freshness(now)
  }

  #penalties(instance: Instance, request: PickRequest, now: number): number {
    const { work, modelKey } = request
    let cost = instance.penalty.valueAt(now)
    if (work !== undefined && modelKey !== undefined && instance.loaded !== undefined && !instance.loaded.has(modelKey)) {
      cost += this.#options.coldModelPenaltyMs
    }
    return cost
  }

  #weight(instance: Instance, now: number): number {
    return instance.weight * instance.health.weightFactor(now)
  }

  #tokens(request: PickRequest): number {
    const average = this.#options.expectedTokens()
    const limit = request.maxTokens
    return limit !== undefined && limit > 0 ? Math.min(limit, MAX_TOKENS_TRUST * average) : average
  }

  /** Mean service time over the instances that have data, else the fixed prior. */
  #prior(instances: readonly Instance[], work: WorkKind | undefined): number {
    if (work === undefined) return UNTIMED_MS
    let sum = 0
    let known = 0
    for (let i = 0; i < instances.length; i++) {
      const service = this.serviceMs(instances[i]!, work)
      if (service !== undefined) {
        sum += service
        known++
      }
    }
    return known === 0 ? PRIOR_MS[work] : sum / known
  }
}
