/**
 * One part of a fan-out (a model list or a model operation sent to every instance) in the
 * balancer's books: a slot taken on its instance while it runs, and given back with how it went,
 * so in-flight counts and passive health see fan-outs as any other request.
 */
import { performance } from 'node:perf_hooks'
import type { AttemptReport, BalancedRequest } from '../balancer/balancer.js'
import type { Instance } from '../balancer/instance.js'
import type { UpstreamFailure } from '../shared/errors.js'

/**
 * The balancer's side of a fan-out: a slot on one named instance, taken whatever its load (a
 * model list or a pull must reach every instance) and given back with how the part went.
 */
export interface FanOutSlots {
  occupy(instance: Instance, request: BalancedRequest): void
  release(instance: Instance, request: BalancedRequest, report: AttemptReport): void
}

/**
 * Takes a slot on `instance` for one part of a fan-out; the function returned gives it back once:
 * 'success', a failure (the instance could not be reached or broke off), or undefined for an end
 * that says nothing of the instance's health (the client left; an error answer of Ollama's own,
 * such as a model missing from the registry).
 */
export function occupySlot(slots: FanOutSlots | undefined, instance: Instance): (outcome: 'success' | UpstreamFailure | undefined) => void {
  if (slots === undefined) {
    instance.requests++
    return () => undefined
  }
  const request: BalancedRequest = {
    work: undefined,
    modelKey: undefined,
    maxTokens: undefined,
    affinityKey: undefined,
    fallback: false,
    upstream: undefined,
    slot: -1,
    level: 0,
  }
  const started = performance.now()
  slots.occupy(instance, request)
  let settled = false
  return (outcome) => {
    if (settled) return
    settled = true
    const ms = performance.now() - started
    const failure = typeof outcome === 'object' ? outcome : undefined
    slots.release(instance, request, {
      outcome: outcome === 'success' ? 'success' : failure !== undefined ? 'failure' : 'neutral',
      failureReason: failure?.message,
      failureKind: failure?.kind,
      // Not model work: its timings say nothing of how fast the instance generates.
      ok: false,
      streamed: false,
      ttfbMs: -1,
      totalMs: ms,
      evalCount: 0,
      evalMs: 0,
    })
  }
}
