import type { Instance } from './instance.js'
import type { SelectionPolicy } from './selection-policy.js'

/**
 * The instance with the fewest requests in flight through corral, relative to its weight
 * (`inFlight / weight`). Ties go round-robin: the scan starts one place further each call, so
 * idle instances share the work instead of the first one taking it all.
 */
export class LeastInflightPolicy implements SelectionPolicy {
  readonly name = 'least-inflight'
  #start = 0

  pick(instances: readonly Instance[], eligible: Uint8Array): Instance | undefined {
    const n = instances.length
    if (n === 0) return undefined
    const start = this.#start
    this.#start = (start + 1) % n
    let best: Instance | undefined
    let bestLoad = Infinity
    for (let k = 0; k < n; k++) {
      const instance = instances[(start + k) % n]!
      if (eligible[instance.index] !== 1) continue
      const load = instance.inFlight / instance.weight
      if (load < bestLoad) {
        bestLoad = load
        best = instance
      }
    }
    return best
  }
}
