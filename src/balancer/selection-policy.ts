import type { Instance } from './instance.js'

/**
 * Chooses the instance for one attempt of one request. Implementations keep whatever state they
 * need per instance in arrays indexed by `Instance.index`, and allocate nothing per call: this
 * runs once per request attempt.
 */
export interface SelectionPolicy {
  /** The policy's config name. */
  readonly name: string
  /**
   * The instance to try next among `instances`, never one in `skip` (already tried for this
   * request) nor one that is `full`; undefined when none is eligible.
   */
  pick(instances: readonly Instance[], skip: ReadonlySet<Instance> | undefined): Instance | undefined
}
