/** What the balancer is given: a request, and how each of its attempts ended. */
import type { PriorityClass } from '../config/priority-class.js'
import type { InstanceErrorKind } from '../shared/errors.js'
import type { PickRequest } from './selection-policy.js'

/** A request as the balancer sees it (the proxy's Exchange is one). */
export interface BalancedRequest extends PickRequest {
  /** Session key for affinity, if any. */
  readonly affinityKey: string | undefined
  /** Set when no candidate was healthy and the request went round-robin over all of them. */
  fallback: boolean
  /** Cancels what the request is waiting for; the balancer sets it while the request is queued. */
  upstream: { cancel(): void } | undefined
  /** The slot cell (Instance.expectedEnds) the request holds while in flight; -1 when none. */
  slot: number
  /** Requests of its kind in flight at its instance when it was sent, itself included (0 before). */
  level: number
  /** Its priority class; undefined: interactive. */
  readonly priority?: PriorityClass | undefined
  /** Who it is for fair shares between keys (the key's name); undefined: nobody in particular. */
  readonly tenant?: string | undefined
  /** The tenant's weight in its class; undefined: 1. */
  readonly shareWeight?: number | undefined
  /**
   * Only instances whose discovered digest of `modelKey` is this (the parts of one split batch:
   * their answers are joined, and cached under one digest); undefined: any instance.
   */
  readonly digest?: string | undefined
}

/** How one attempt ended, as the balancer needs it. */
export interface AttemptReport {
  readonly outcome: 'success' | 'failure' | 'neutral'
  /** Why it failed (outcome failure). */
  readonly failureReason: string | undefined
  /** Its kind (outcome failure). */
  readonly failureKind: InstanceErrorKind | undefined
  /** The instance answered 200: timings are meaningful. */
  readonly ok: boolean
  /** The answer was streamed (its headers came before the work was done). */
  readonly streamed: boolean
  /** ms from sending to the response headers; -1 if none came. */
  readonly ttfbMs: number
  /** ms from sending to the end of the response. */
  readonly totalMs: number
  /** Ollama's eval_count and eval_duration (as ms) from the final chunk; 0 when absent. */
  readonly evalCount: number
  readonly evalMs: number
}
