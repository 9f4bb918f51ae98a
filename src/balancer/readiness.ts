import { probe } from './health-checker.js'
import type { Instance } from './instance.js'

/** How long one readiness answer is reused, so a busy probe endpoint costs the instances little. */
const READY_CACHE_MS = 1000
const PROBE_TIMEOUT_MS = 2000

export interface InstanceProbe {
  name: string
  reachable: boolean
  error?: string
}

/**
 * Answers "can corral reach at least one instance?" for `/readyz`, by asking each instance for
 * `/api/version`. Probes run concurrently, are shared by concurrent callers, and the answer is
 * reused for a second.
 */
export class Readiness {
  /** The instances to probe, read at every check (a reload changes them). */
  readonly #instances: () => readonly Instance[]
  readonly #now: () => number
  #last: { at: number; probes: InstanceProbe[] } | undefined
  #running: Promise<InstanceProbe[]> | undefined

  constructor(instances: () => readonly Instance[], now: () => number = Date.now) {
    this.#instances = instances
    this.#now = now
  }

  async check(): Promise<InstanceProbe[]> {
    if (this.#last && this.#now() - this.#last.at < READY_CACHE_MS) return this.#last.probes
    this.#running ??= Promise.all(this.#instances().map(check)).then((probes) => {
      this.#last = { at: this.#now(), probes }
      this.#running = undefined
      return probes
    })
    return this.#running
  }
}

async function check(instance: Instance): Promise<InstanceProbe> {
  const error = await probe(instance, PROBE_TIMEOUT_MS, 'corral (readiness)')
  return error === undefined ? { name: instance.name, reachable: true } : { name: instance.name, reachable: false, error }
}
