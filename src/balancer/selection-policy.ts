import type { Instance, WorkKind } from './instance.js'

/** What a policy may know about the request it places. */
export interface PickRequest {
  /** The kind of model work, or undefined for requests that run no model (`/api/show`, ...). */
  readonly work: WorkKind | undefined
  /** The requested model's canonical name, if any. */
  readonly modelKey: string | undefined
  /** The answer's token limit when the request sets one (`options.num_predict`, `max_tokens`). */
  readonly maxTokens: number | undefined
}

/**
 * Chooses the instance for one attempt of one request among those the balancer marked eligible
 * (healthy, with the model, not tried, not full). Implementations keep whatever state they need
 * per instance in arrays indexed by `Instance.index`, and allocate nothing per call: this runs
 * once per request attempt.
 */
export interface SelectionPolicy {
  /** The policy's config name. */
  readonly name: string
  /**
   * The instance to use among `instances` where `eligible[instance.index]` is 1; undefined when
   * none is eligible.
   */
  pick(instances: readonly Instance[], eligible: Uint8Array, request: PickRequest, now: number): Instance | undefined
  /**
   * Optional, for policies that predict finish times: like `pick`, but may also decide that the
   * request should wait for a slot on a full instance (marked FULL in `eligible`) because it would
   * finish sooner there than on any free one. `queueAhead` is the number of requests that would
   * be served before this one.
   */
  place?(instances: readonly Instance[], eligible: Uint8Array, request: PickRequest, now: number, queueAhead: number): Instance | 'wait' | undefined
  /**
   * Optional, for policies that score instances: the score of `instance` for `request` now, as if
   * it had a free slot (lower is better). Session affinity keeps a session on its instance while
   * this stays within the tolerance of the best; stats show it. Without it, affinity always sticks.
   */
  score?(instance: Instance, request: PickRequest, now: number, instances: readonly Instance[]): number
  /**
   * Optional, for policies that predict finish times: the predicted service time of `request` on
   * `instance` in ms. The balancer then holds a slot cell (`Instance.expectedEnds`) until the
   * predicted end, which `place` reads to know when a full instance frees a slot.
   */
  expectedServiceMs?(instance: Instance, request: PickRequest, instances: readonly Instance[]): number
}

/** Marks in the eligibility array: may take the request now / is admitted but at its cap. */
export const ELIGIBLE = 1
export const FULL = 3
