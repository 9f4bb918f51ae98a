import type { KeyLimits } from '../config/auth-config.js'
import type { PriorityClass } from '../config/priority-class.js'

/** Who a request comes from, once its key or token was accepted. */
export interface Principal {
  /** The key's configured name, or the JWT's name claim; in logs and for per-key limits. */
  readonly name: string
  /** The `key` metric label: the name, or `other` past the cap on JWT names (bounded). */
  readonly label: string
  /** May use admin routes. */
  readonly admin: boolean
  readonly limits: KeyLimits
  /**
   * The cache partition of the principal's requests: `key:<name>`, `group:<cache_group>` for a
   * key in a cache group, `jwt:<subject>` for a token, '' for nobody in particular (auth off).
   * Entries and single flights of different partitions never meet (unless
   * `cache.share_across_keys`).
   */
  readonly cachePartition: string
  /** Class of all the principal's requests (a key's `priority`); undefined: by each request. */
  readonly priority: PriorityClass | undefined
  /** Share of the fleet against other principals waiting in the same class (a key's `weight`). */
  readonly weight: number
}

/** Why a request was refused, as the `reason` label of `corral_auth_failures_total`. */
export type AuthFailureReason = 'missing' | 'invalid' | 'expired' | 'forbidden'

/** Which per-key limit refused a request, as the `limit` label of `corral_rate_limited_total`. */
export type LimitName = 'rpm' | 'concurrency'

/** The principal of every request while auth is off (and of open routes). */
export const ANONYMOUS: Principal = Object.freeze({
  name: 'anonymous',
  label: 'anonymous',
  admin: true,
  limits: Object.freeze({ rpm: 0, maxConcurrency: 0 }),
  cachePartition: '',
  priority: undefined,
  weight: 1,
})
