import type { KeyLimits } from '../config/auth-config.js'
import type { LimitName } from '../http/principal.js'


/** A request let through: `release` frees its concurrency slot (idempotent; call it exactly when the response closes). */
export interface Granted {
  readonly ok: true
  release(): void
}

/** A request refused: answer 429 with `Retry-After: retryAfterSeconds`. */
export interface Refused {
  readonly ok: false
  readonly limit: LimitName
  readonly retryAfterSeconds: number
}

export type Admission = Granted | Refused

/**
 * Per-key request limits: requests per minute (fixed one-minute windows) and requests in flight.
 * Implementations keep their counts across calls with different `limits` (a reload changes the
 * limits, not the counts).
 */
export interface Limiter {
  acquire(name: string, limits: KeyLimits, now: number): Admission | Promise<Admission>
  /** Releases what the limiter owns (a Redis connection). Idempotent. */
  close(): Promise<void>
}

export const WINDOW_MS = 60_000

/** The admission of a key without limits: nothing to count, nothing to release. */
export const UNLIMITED: Granted = Object.freeze({ ok: true as const, release() {} })

export function unlimited(limits: KeyLimits): boolean {
  return limits.rpm === 0 && limits.maxConcurrency === 0
}

/** Whole seconds until the current one-minute window ends (at least 1). */
export function secondsToWindowEnd(now: number): number {
  return Math.max(1, Math.ceil((WINDOW_MS - (now % WINDOW_MS)) / 1000))
}
