import type { Instance } from './instance.js'
import type { SelectionPolicy } from './selection-policy.js'

/**
 * Smooth weighted round-robin (the algorithm nginx uses): every pick adds each eligible instance's
 * weight to its running credit, takes the instance with the most credit and charges it the sum of
 * the weights. Equal weights give plain rotation; weights 2:1 give A A B interleaved as A B A,
 * never bursts. Instances that are not eligible (full, tried, down) are passed over without losing their turn.
 */
export class RoundRobinPolicy implements SelectionPolicy {
  readonly name = 'round-robin'
  #credit: Float64Array

  constructor(instanceCount: number) {
    this.#credit = new Float64Array(instanceCount)
  }

  pick(instances: readonly Instance[], eligible: Uint8Array): Instance | undefined {
    let best: Instance | undefined
    let bestCredit = -Infinity
    let total = 0
    for (let i = 0; i < instances.length; i++) {
      const instance = instances[i]!
      if (eligible[instance.index] !== 1) continue
      const credit = (this.#credit[instance.index]! += instance.weight)
      total += instance.weight
      if (credit > bestCredit) {
        bestCredit = credit
        best = instance
      }
    }
    if (best !== undefined) this.#credit[best.index]! -= total
    return best
  }
}
