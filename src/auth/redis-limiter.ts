/**
 * Per-key limits shared by every replica through Redis, one round trip per request (a Lua
 * script):
 * - rpm: INCR of `{prefix}auth:{name}:rpm:{minute}`, PEXPIRE until the window's end on the first
 *   request of the window (a fixed window, like the memory limiter);
 * - concurrency: a sorted set `{prefix}auth:{name}:inflight` of request ids scored by the end of
 *   their lease; entries past their lease are dropped first, so a replica that died with
 *   requests in flight frees their slots after `leaseMs` at most. Released with ZREM when the
 *   response closes.
 * Both keys share the `{name}` hash tag, so the script works on Redis Cluster too.
 *
 * Every request admitted through Redis is also counted by this replica's in-memory limiter (the
 * one that takes over when Redis fails), and refused when that count is full: so one replica
 * never lets more than a key's limits through, whether Redis answers, times out in the middle of
 * a burst, or is down. Redis failing (down, slower than the limiter's own command timeout, not
 * connected yet) never becomes an error: the request is counted in memory only, per replica,
 * until Redis answers; meanwhile a key gets at most its limits per replica.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import type { Cluster, Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { KeyLimits } from '../config/auth-config.js'
import { UNLIMITED, WINDOW_MS, secondsToWindowEnd, unlimited, type Admission, type Granted, type Limiter } from './limiter.js'
import type { MemoryLimiter } from './memory-limiter.js'

/** How long a slot held through Redis counts at most (a request's whole life, streams included). */
export const CONCURRENCY_LEASE_MS = 15 * 60_000

/**
 * KEYS: rpm key, in-flight key. ARGV: now, ms until the window's end (plus a second of slack:
 * relative, so Redis' own clock does not matter), rpm limit, concurrency limit, member, lease (ms). Returns 0 (admitted), 1 (rpm exceeded) or 2 (concurrency exceeded); a request
 * refused for concurrency does not use up the minute's count.
 */
const ADMIT_LUA = `
local rpm = tonumber(ARGV[3])
local conc = tonumber(ARGV[4])
if rpm > 0 then
  local n = redis.call('INCR', KEYS[1])
  if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
  if n > rpm then return 1 end
end
if conc > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
  if redis.call('ZCARD', KEYS[2]) >= conc then
    if rpm > 0 then redis.call('DECR', KEYS[1]) end
    return 2
  end
  redis.call('ZADD', KEYS[2], ARGV[1] + ARGV[6], ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
end
return 0
`

interface AdmitCommand {
  corralAdmit(rpmKey: string, inflightKey: string, ...args: (string | number)[]): Promise<number>
}

class RedisSlot implements Granted {
  readonly ok = true as const
  #release: (() => void) | undefined

  constructor(release: () => void) {
    this.#release = release
  }

  release(): void {
    const release = this.#release
    this.#release = undefined
    release?.()
  }
}

export class RedisLimiter implements Limiter {
  readonly #client: Redis | Cluster
  readonly #prefix: string
  readonly #fallback: MemoryLimiter
  readonly #logger: Logger
  readonly #owner = randomBytes(6).toString('hex')
  #counter = 0
  #degraded = false
  #closed = false

  /** `client` is owned (closed by `close`); `fallback` counts while Redis fails. */
  constructor(client: Redis | Cluster, keyPrefix: string, fallback: MemoryLimiter, logger: Logger) {
    this.#client = client
    this.#prefix = keyPrefix
    this.#fallback = fallback
    this.#logger = logger
    client.defineCommand('corralAdmit', { numberOfKeys: 2, lua: ADMIT_LUA })
    // ioredis reports connection errors as events; they are state here, never crashes.
    client.on('error', () => {})
  }

  async acquire(name: string, limits: KeyLimits, now: number): Promise<Admission> {
    if (unlimited(limits)) return UNLIMITED
    if (this.#client.status !== 'ready') return this.#fallBack(name, limits, now, 'not connected')
    const window = Math.floor(now / WINDOW_MS)
    const tag = `${this.#prefix}auth:{${name}}`
    const inflightKey = `${tag}:inflight`
    const member = `${this.#owner}:${(++this.#counter).toString(36)}`
    let code: number
    try {
      code = await (this.#client as unknown as AdmitCommand).corralAdmit(
        `${tag}:rpm:${window}`,
        inflightKey,
        now,
        (window + 1) * WINDOW_MS - now + 1000,
        limits.rpm,
        limits.maxConcurrency,
        member,
        CONCURRENCY_LEASE_MS,
      )
    } catch (err) {
      return this.#fallBack(name, limits, now, err instanceof Error ? err.message : String(err))
    }
    if (this.#degraded) {
      this.#degraded = false
      this.#logger.info('rate limits shared through Redis again')
    }
    if (code === 1) return { ok: false, limit: 'rpm', retryAfterSeconds: secondsToWindowEnd(now) }
    if (code === 2) return { ok: false, limit: 'concurrency', retryAfterSeconds: 1 }
    // This replica's own count: admissions through Redis and through the fallback are one budget.
    const local = this.#fallback.acquire(name, limits, now)
    if (!local.ok) {
      if (limits.maxConcurrency > 0) this.#remove(inflightKey, member)
      return local
    }
    if (limits.maxConcurrency === 0) return local
    return new RedisSlot(() => {
      local.release()
      this.#remove(inflightKey, member)
    })
  }

  /** Frees a slot in Redis; a release that fails (Redis down meanwhile) is settled by the lease. */
  #remove(inflightKey: string, member: string): void {
    void this.#client.zrem(inflightKey, member).catch(() => {})
  }

  /** Resolves once Redis is connected (until then requests are counted in memory). */
  async ready(): Promise<void> {
    if (this.#client.status !== 'ready') await once(this.#client, 'ready')
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#client.disconnect()
    await this.#fallback.close()
  }

  #fallBack(name: string, limits: KeyLimits, now: number, why: string): Admission {
    if (!this.#degraded) {
      this.#degraded = true
      this.#logger.warn({ err: why }, 'Redis unavailable: rate limits counted per replica in memory')
    }
    return this.#fallback.acquire(name, limits, now)
  }
}
