/**
 * The first thing the server does with every request while auth is on: find the scope the route
 * needs, read the bearer token, accept it as an API key or a JWT, check the scope, and take a
 * slot under the key's limits (freed when the response closes, however it closes). A refused
 * request is answered here, in Ollama's error shape (OpenAI's on /v1), and logged with the key's
 * name (or `unknown`), never the token.
 *
 * `reconfigure` swaps keys, JWT settings and limits at run time (hot reload); the limiter and
 * its counts (minute counts, requests in flight) carry over.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Logger } from 'pino'
import type { AuthConfig } from '../config/auth-config.js'
import type { RedisConfig } from '../config/config.js'
import { createRedisClient } from '../redis/redis-client.js'
import { dialectOf, replyError } from '../http/reply.js'
import { JwtVerifier } from './jwt-verifier.js'
import { KeyLabels } from './key-labels.js'
import { KeyStore } from './key-store.js'
import type { Admission, Limiter } from './limiter.js'
import { MemoryLimiter } from './memory-limiter.js'
import { ANONYMOUS, type AuthFailureReason, type LimitName, type Principal } from '../http/principal.js'
import { RedisLimiter } from './redis-limiter.js'
import { scopeOf } from './scope.js'

/** Where the authenticator reports (the metrics, when on). */
export interface AuthMetricsSink {
  recordAuthFailure(reason: AuthFailureReason): void
  recordRateLimited(keyLabel: string, limit: LimitName): void
}

export interface AuthenticatorDeps {
  logger: Logger
  metrics?: AuthMetricsSink | undefined
  /** Share the limits through this Redis (a client of its own); undefined: in memory only. */
  redis?: RedisConfig | undefined
  /** Clock for the per-minute windows (ms since the epoch). Default Date.now. */
  now?: () => number
}

/**
 * Longest wait for the limiter's one Redis round trip (or `redis.command_timeout` when longer):
 * past it the request is counted in memory only. A second: a limit is worth a short wait, a
 * cache lookup is not.
 */
export const LIMITS_COMMAND_TIMEOUT_MS = 1000

const BEARER_RE = /^Bearer[ \t]+([^\s]+)[ \t]*$/i
const JWT_SHAPE_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/

export class Authenticator {
  readonly #logger: Logger
  readonly #metrics: AuthMetricsSink | undefined
  readonly #redis: RedisConfig | undefined
  readonly #now: () => number
  readonly #memory = new MemoryLimiter()
  /** Bounded metric labels of JWT names; kept across reloads so labels stay stable. */
  readonly #jwtLabels = new KeyLabels()
  #limiter: Limiter | undefined
  #config!: AuthConfig
  #keys!: KeyStore
  #jwt: JwtVerifier | undefined
  #closed = false

  /** Throws when JWT key material (a PEM or JWKS file) cannot be read. */
  constructor(config: AuthConfig, deps: AuthenticatorDeps) {
    this.#logger = deps.logger
    this.#metrics = deps.metrics
    this.#redis = deps.redis
    this.#now = deps.now ?? Date.now
    this.reconfigure(config)
  }

  /** Whether requests need a key. */
  get enabled(): boolean {
    return this.#config.enabled
  }

  /** Whether `GET /metrics` needs no key (always true while auth is off). */
  get metricsOpen(): boolean {
    return !this.#config.enabled || this.#config.metricsOpen
  }

  /** The limiter's in-process count of requests in flight for a key name (tests, stats). */
  inFlight(name: string): number {
    return this.#memory.inFlight(name)
  }

  /** Resolves once the limits are shared through Redis (at once without Redis, or while auth is off). */
  async limitsShared(): Promise<void> {
    if (this.#limiter instanceof RedisLimiter) await this.#limiter.ready()
  }

  /**
   * Takes a new auth configuration: keys, JWT verification, limits, metrics_open, on/off. Counts
   * already taken (requests in flight, this minute's requests) carry over. Throws, keeping the
   * previous configuration, when the new JWT key material cannot be read.
   */
  reconfigure(config: AuthConfig): void {
    const jwt = config.jwt !== undefined ? new JwtVerifier(config.jwt, config.limits, this.#jwtLabels) : undefined
    this.#keys = new KeyStore(config.keys)
    this.#jwt = jwt
    this.#config = config
    if (config.enabled && this.#limiter === undefined && !this.#closed) {
      this.#limiter =
        this.#redis !== undefined
          ? new RedisLimiter(
              // Its own client and command timeout: the cache's (50 ms by default) fires during a
              // burst, and a limit counted half in Redis, half in memory lets the burst through.
              createRedisClient({ ...this.#redis, commandTimeoutMs: Math.max(this.#redis.commandTimeoutMs, LIMITS_COMMAND_TIMEOUT_MS) }),
              this.#redis.keyPrefix,
              this.#memory,
              this.#logger,
            )
          : this.#memory
    }
  }

  /**
   * Admits a request: resolves with its principal when it may go on (its slot is released when
   * `res` closes), or undefined once it has been answered with 401, 403 or 429 (or the client
   * left meanwhile). `path` is the request's path without the query. Never rejects.
   */
  async admit(req: IncomingMessage, res: ServerResponse, path: string): Promise<Principal | undefined> {
    const config = this.#config
    if (!config.enabled) return ANONYMOUS
    // The client's key is corral's, not the instances': it is never forwarded, whatever the
    // route (an open one that ends up proxied included).
    const authorization = req.headers.authorization
    delete req.headers.authorization
    const scope = scopeOf(req.method, path, config.metricsOpen)
    if (scope === 'open') return ANONYMOUS
    const token = bearerToken(authorization)
    if (token === undefined) {
      const message = authorization === undefined ? 'missing API key (send Authorization: Bearer <key>)' : 'Authorization is not a Bearer token'
      return this.#refuse(req, res, path, 401, 'missing', message, undefined)
    }
    let principal = this.#keys.lookup(token)
    if (principal === undefined) {
      if (this.#jwt === undefined || !JWT_SHAPE_RE.test(token)) return this.#refuse(req, res, path, 401, 'invalid', 'invalid API key', undefined)
      const result = await this.#jwt.verify(token)
      if ('failure' in result) return this.#refuse(req, res, path, 401, result.failure.reason, result.failure.message, undefined)
      principal = result.principal
    }
    if (scope === 'admin' && !principal.admin) {
      return this.#refuse(req, res, path, 403, 'forbidden', `the key "${principal.name}" may not use ${path} (admin only)`, principal)
    }
    return this.#take(req, res, path, principal)
  }

  /** Closes the Redis connection of the limits, if any. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true
    await this.#limiter?.close()
  }

  async #take(req: IncomingMessage, res: ServerResponse, path: string, principal: Principal): Promise<Principal | undefined> {
    const limiter = this.#limiter ?? this.#memory
    let admission: Admission | undefined = undefined
    let closed = false
    // Listening before the (possibly remote) acquire: a client gone meanwhile still frees its slot.
    res.once('close', () => {
      closed = true
      if (admission?.ok === true) admission.release()
    })
    admission = await limiter.acquire(principal.name, principal.limits, this.#now())
    if (!admission.ok) {
      this.#metrics?.recordRateLimited(principal.label, admission.limit)
      this.#logger.warn({ key: principal.name, limit: admission.limit, method: req.method, path }, 'rate limited')
      const what = admission.limit === 'rpm' ? `${principal.limits.rpm} requests per minute` : `${principal.limits.maxConcurrency} requests at once`
      answer(req, res, path, 429, `rate limit exceeded: the key "${principal.name}" may send ${what}; retry in ${admission.retryAfterSeconds} s`, {
        'retry-after': String(admission.retryAfterSeconds),
      })
      return undefined
    }
    if (closed) {
      admission.release()
      return undefined
    }
    return principal
  }

  #refuse(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    status: 401 | 403,
    reason: AuthFailureReason,
    message: string,
    principal: Principal | undefined,
  ): undefined {
    this.#metrics?.recordAuthFailure(reason)
    this.#logger.warn(
      { key: principal?.name ?? 'unknown', reason, method: req.method, path, client: req.socket.remoteAddress },
      'auth failed',
    )
    const headers: Record<string, string> = {}
    if (status === 401) headers['www-authenticate'] = reason === 'missing' ? 'Bearer realm="corral"' : 'Bearer realm="corral", error="invalid_token"'
    answer(req, res, path, status, `${status === 401 ? 'unauthorized' : 'forbidden'}: ${message}`, headers)
    return undefined
  }
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined
  return BEARER_RE.exec(header)?.[1]
}

function answer(req: IncomingMessage, res: ServerResponse, path: string, status: number, message: string, headers: Record<string, string>): void {
  if (res.headersSent || res.destroyed) return
  // A refused upload is not read to keep the connection; it is drained (bounded) before the
  // connection closes, so the client still sending reads the refusal instead of a reset.
  replyError(res, status, message, dialectOf(path), headers, req.complete ? undefined : { linger: req })
}
