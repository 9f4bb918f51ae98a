/**
 * The load-score policy: the instance where a new request would finish soonest.
 *
 * score = (service x (1 + inFlight / slots) + cold-model penalty + failure penalty) / (weight x slow-start factor)
 *
 * - `service` is the predicted time of one request of this kind on this instance: its peak-EWMA
 *   time to first byte plus the expected answer length (tokens, averaged over the fleet) times
 *   its peak-EWMA ms per token. An instance without data yet is given the mean of those with
 *   data, or a fixed prior when none has any, so a new instance is tried rather than avoided.
 * - `inFlight / slots` is the work already queued there in units of its parallel slots
 *   (`max_concurrency`, i.e. OLLAMA_NUM_PARALLEL).
 * - The cold-model penalty applies when discovery says the model is not loaded there.
 * - The failure penalty decays; failures never update the timing averages, so a fast error makes
 *   an instance less attractive, never more.
 *
 * The lowest score wins; exact ties (idle fleets with no data) rotate, like round-robin. The scan
 * allocates nothing.
 */
import type { Instance, WorkKind } from './instance.js'
import type { PickRequest, SelectionPolicy } from './selection-policy.js'

export interface LoadScoreOptions {
  coldModelPenaltyMs: number
  /** Expected tokens of a generated answer, maintained by the balancer from Ollama's eval_count. */
  expectedTokens: () => number
}

/** Service time assumed when no instance has measured this kind of work yet, in ms. */
const PRIOR_MS: Readonly<Record<WorkKind, number>> = { generation: 1000, embedding: 50 }
/** Requests that run no model are only counted, not timed. */
const UNTIMED_MS = 1

export class LoadScorePolicy implements SelectionPolicy {
  readonly name = 'load-score'
  readonly #options: LoadScoreOptions
  #start = 0

  constructor(options: LoadScoreOptions) {
    this.#options = options
  }

  pick(instances: readonly Instance[], eligible: Uint8Array, request: PickRequest, now: number): Instance | undefined {
    const n = instances.length
    if (n === 0) return undefined
    const prior = this.#prior(instances, request.work)
    const start = this.#start
    this.#start = (start + 1) % n
    let best: Instance | undefined
    let bestScore = Infinity
    for (let k = 0; k < n; k++) {
      const instance = instances[(start + k) % n]!
      if (eligible[instance.index] !== 1) continue
      const score = this.#score(instance, request, now, prior)
      if (score < bestScore) {
        bestScore = score
        best = instance
      }
    }
    return best
  }

  /** The instance's score for `request` now: predicted ms until a new request would finish there. */
  score(instance: Instance, request: PickRequest, now: number, instances: readonly Instance[]): number {
    return this.#score(instance, request, now, this.#prior(instances, request.work))
  }

  /** Predicted service time of one request of `work` on `instance`, or undefined without data. */
  serviceMs(instance: Instance, work: WorkKind): number | undefined {
    const timing = instance.timing[work]
    if (!timing.ttfbMs.known) return undefined
    const generating = work === 'generation' && timing.msPerToken.known
    return timing.ttfbMs.value + (generating ? this.#options.expectedTokens() * timing.msPerToken.value : 0)
  }

  #score(instance: Instance, request: PickRequest, now: number, prior: number): number {
    const { work, modelKey } = request
    const service = work === undefined ? UNTIMED_MS : (this.serviceMs(instance, work) ?? prior)
    const slots = Number.isFinite(instance.maxConcurrency) ? instance.maxConcurrency : 1
    let cost = service * (1 + instance.inFlight / slots)
    if (work !== undefined && modelKey !== undefined && instance.loaded !== undefined && !instance.loaded.has(modelKey)) {
      cost += this.#options.coldModelPenaltyMs
    }
    cost += instance.penalty.valueAt(now)
    return cost / (instance.weight * instance.health.weightFactor(now))
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
