/**
 * The runtime form of `auth:`: plain keys are hashed here, at load, so that only SHA-256 hashes
 * live in the compiled configuration (and in the key store built from it).
 */
import { createHash } from 'node:crypto'
import type { ConfigFile } from './schema.js'
import { parseDuration } from './units.js'
import type { PriorityClass } from './priority-class.js'

/** Requests per minute and in flight at once; 0: unlimited. */
export interface KeyLimits {
  readonly rpm: number
  readonly maxConcurrency: number
}

/** One API key (`auth.keys[]`). */
export interface ApiKeyConfig {
  /** Unique; logs and the `key` metric label. */
  readonly name: string
  /** SHA-256 of the key, lower-case hex (from `key_sha256`, or computed from `key` at load). */
  readonly sha256: string
  /** May use admin routes (`admin`). Default false. */
  readonly admin: boolean
  /** The key's own limits, else `auth.limits`. */
  readonly limits: KeyLimits
  /**
   * Keys with the same `cache_group` share cached answers and single flights; undefined: the
   * key's answers are its own (unless `cache.share_across_keys`). Default undefined.
   */
  readonly cacheGroup: string | undefined
  /** Class of all the key's requests (`priority`); undefined: by the request. Default undefined. */
  readonly priority: PriorityClass | undefined
  /** Share against other keys in the same class (`weight`). Default 1. */
  readonly weight: number
}

/** JWT verification (`auth.jwt`): exactly one of `secret`, `publicKey`, `jwksFile` is set. */
export interface JwtConfig {
  /** Shared secret for HS* (`secret`). */
  readonly secret: string | undefined
  /** PEM text or the path of a PEM file (`public_key`). */
  readonly publicKey: string | undefined
  /** Path of a JWK Set file (`jwks_file`). */
  readonly jwksFile: string | undefined
  /** Accepted `alg` values (`algorithms`). Default [HS256] with a secret, else [RS256, ES256]. */
  readonly algorithms: readonly string[]
  /** Required `iss` (`issuer`); undefined: not checked. */
  readonly issuer: string | undefined
  /** Required `aud` (`audience`); undefined: not checked. */
  readonly audience: string | undefined
  /** Claim naming the caller (`name_claim`). Default sub. */
  readonly nameClaim: string
  /** Claim that grants admin (`admin_claim`). Default scope. */
  readonly adminClaim: string
  /** The value of that claim granting admin (`admin_value`). Default corral:admin. */
  readonly adminValue: string
  /** Clock skew allowed on exp/nbf, in seconds (`clock_tolerance`). Default 30. */
  readonly clockToleranceSeconds: number
}

/** `auth:`. */
export interface AuthConfig {
  /** Require a key on every route but /healthz and /readyz (`enabled`). Default false. */
  readonly enabled: boolean
  readonly keys: readonly ApiKeyConfig[]
  /** undefined: no JWT accepted. */
  readonly jwt: JwtConfig | undefined
  /** GET /metrics needs no key (`metrics_open`). Default false. */
  readonly metricsOpen: boolean
  /** Default per-key limits (`limits`). Default 0 and 0 (unlimited). */
  readonly limits: KeyLimits
}

/** SHA-256 of a key, lower-case hex. */
export function keyHash(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex')
}

export function compileAuth(file: ConfigFile['auth']): AuthConfig {
  const limits: KeyLimits = { rpm: file.limits.rpm, maxConcurrency: file.limits.max_concurrency }
  const jwt = file.jwt ?? undefined
  return {
    enabled: file.enabled,
    keys: file.keys.map((k) => ({
      name: k.name,
      sha256: k.key_sha256 !== undefined ? k.key_sha256.toLowerCase() : keyHash(k.key!),
      admin: k.admin,
      limits: { rpm: k.rpm ?? limits.rpm, maxConcurrency: k.max_concurrency ?? limits.maxConcurrency },
      cacheGroup: k.cache_group ?? undefined,
      priority: k.priority,
      weight: k.weight,
    })),
    jwt:
      jwt === undefined
        ? undefined
        : {
            secret: jwt.secret ?? undefined,
            publicKey: jwt.public_key ?? undefined,
            jwksFile: jwt.jwks_file ?? undefined,
            algorithms: jwt.algorithms ?? (jwt.secret != null ? ['HS256'] : ['RS256', 'ES256']),
            issuer: jwt.issuer ?? undefined,
            audience: jwt.audience ?? undefined,
            nameClaim: jwt.name_claim,
            adminClaim: jwt.admin_claim,
            adminValue: jwt.admin_value,
            clockToleranceSeconds: parseDuration(jwt.clock_tolerance)! / 1000,
          },
    metricsOpen: file.metrics_open,
    limits,
  }
}
