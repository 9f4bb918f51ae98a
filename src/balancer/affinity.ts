/**
 * Session affinity: a session (a header's value, or a hash of the first bytes of its prompt) goes
 * back to the instance that last answered it, while that instance may take it now and, for a
 * policy that scores instances, scores within the tolerance of the best. The oldest sessions are
 * forgotten past a bound.
 */
import type { Config } from '../config/config.js'
import type { Instance } from './instance.js'
import { ELIGIBLE, type PickRequest, type SelectionPolicy } from './selection-policy.js'

/** Sessions remembered for affinity. */
const AFFINITY_ENTRIES = 10_000

export class Affinity {
  /** Session key -> the instance that last answered it; oldest first. */
  readonly #sessions = new Map<string, Instance>()

  /** Session key for affinity from a request's headers and body, when affinity is configured. */
  keyOf(
    rules: Config['balancer']['affinity'],
    headers: Readonly<Record<string, string | string[] | undefined>>,
    json: Record<string, unknown> | undefined,
  ): string | undefined {
    const { header, prefixBytes } = rules
    if (header !== undefined) {
      const value = headers[header]
      if (typeof value === 'string' && value !== '') return `h:${value}`
    }
    if (prefixBytes > 0 && json !== undefined) {
      const source = json.messages ?? json.prompt
      if (source !== undefined) return `p:${fnv1a(JSON.stringify(source).slice(0, prefixBytes))}`
    }
    return undefined
  }

  /** Records that `instance` answered the session `key` (it becomes the most recent). */
  remember(key: string, instance: Instance): void {
    this.#sessions.delete(key)
    this.#sessions.set(key, instance)
    if (this.#sessions.size > AFFINITY_ENTRIES) this.#sessions.delete(this.#sessions.keys().next().value!)
  }

  /**
   * The session's previous instance instead of `best`, while it is marked ELIGIBLE in `eligible`
   * and its score is within `tolerance` times the best's (always, for a policy without scores).
   */
  prefer(
    key: string,
    best: Instance,
    request: PickRequest,
    now: number,
    instances: readonly Instance[],
    eligible: Uint8Array,
    policy: SelectionPolicy,
    tolerance: number,
  ): Instance {
    const previous = this.#sessions.get(key)
    if (previous === undefined || previous === best || previous.retired || eligible[previous.index] !== ELIGIBLE) return best
    if (policy.score === undefined) return previous
    return policy.score(previous, request, now, instances) <= tolerance * policy.score(best, request, now, instances) ? previous : best
  }

  /** Forgets the sessions of instances a reload removed. */
  forgetRetired(): void {
    for (const [key, instance] of this.#sessions) if (instance.retired) this.#sessions.delete(key)
  }
}

/** 32-bit FNV-1a of a string, as 8 hex digits: a cheap, stable session key. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash >>> 0).toString(16).padStart(8, '0')
}
