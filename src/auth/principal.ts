import type { KeyLimits } from '../config/auth-config.js'

/** Who a request comes from, once its key or token was accepted. */
export interface Principal {
  /** The key's configured name, or the JWT's name claim; in logs and for per-key limits. */
  readonly name: string
  /** The `key` metric label: the name, or `other` past the cap on JWT names (bounded). */
  readonly label: string
  /** May use admin routes. */
  readonly admin: boolean
  readonly limits: KeyLimits
}

/** The principal of every request while auth is off (and of open routes). */
export const ANONYMOUS: Principal = Object.freeze({
  name: 'anonymous',
  label: 'anonymous',
  admin: true,
  limits: Object.freeze({ rpm: 0, maxConcurrency: 0 }),
})
