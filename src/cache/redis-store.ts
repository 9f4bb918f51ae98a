import { randomUUID } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import type { Logger } from 'pino'
import type { CacheEntry, CacheStore, LayerUsage, RemoteHealth } from './cache-store.js'

export interface RedisStoreOptions {
  /**
   * The client, built with a command timeout, no offline queue and no per-request retries (see
   * `createRedisClient`), so a failing Redis answers fast with an error instead of queueing.
   */
  client: Redis | Cluster
  /** While Redis is failing it is skipped; a background PING probes it after this long (ms). */
  retryIntervalMs: number
  /**
   * Longest wait for one command (`redis.command_timeout`), judged after the event loop has read
   * what arrived: see {@link RedisStore}. Undefined: the client's own timeout alone.
   */
  commandTimeoutMs?: number | undefined
  logger: Logger
}

const SCAN_COUNT = 1000
/**
 * Consecutive failures that open the circuit. One slow command (a busy machine, a GC pause in
 * this process) only makes its own request a miss; a dead or frozen Redis fails every command
 * and trips it within a few requests.
 */
const FAILURES_TO_OPEN = 3
/** Deletes a lock only while it still holds this process's token. */
const RELEASE_SCRIPT = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"
const NO_USAGE: LayerUsage = Object.freeze({ entries: 0, bytes: 0, evictions: 0 })

/** `*`, `?`, `[`, `]` and `\` are glob characters in SCAN MATCH. */
const escapeGlob = (s: string): string => s.replace(/[*?[\]\\]/g, '\\$&')

/**
 * The shared store in Redis. It never slows or breaks the request path: every failure makes
 * `get` a miss and `set` a no-op, and three failures in a row open a circuit that skips Redis
 * entirely (no request waits on it) until a probe finds it answering again. The probe runs on a
 * timer every retry interval while Redis is down, not on a request, so an idle corral's
 * `corral_redis_up` and `/cache/stats` see Redis come back too. Each state change is logged once
 * (warn when down, info when up) and counted.
 */
export class RedisStore implements CacheStore {
  readonly kind = 'redis'
  readonly #client: Redis | Cluster
  readonly #retryIntervalMs: number
  readonly #commandTimeoutMs: number | undefined
  readonly #logger: Logger
  #state: 'connecting' | 'up' | 'down' = 'connecting'
  #errors = 0
  #stateChanges = 0
  #consecutiveFailures = 0
  #probing = false
  #probeTimer: NodeJS.Timeout | undefined
  readonly #waiters = new Set<() => void>()
  #closed: Promise<void> | undefined
  /** The value of this process's locks (`claim`). */
  readonly #token = randomUUID()

  constructor(options: RedisStoreOptions) {
    this.#client = options.client
    this.#retryIntervalMs = options.retryIntervalMs
    this.#commandTimeoutMs = options.commandTimeoutMs
    this.#logger = options.logger
    // Connection errors come as events; without a listener ioredis would print them.
    this.#client.on('error', (err: Error) => this.#failed(err))
    this.#client.on('ready', () => this.#succeeded())
  }

  async get(key: string): Promise<CacheEntry | undefined> {
    if (!this.#usable()) return undefined
    try {
      const value = await this.#timed(this.#client.getBuffer(key))
      this.#succeeded()
      return value === null ? undefined : { value, view: undefined }
    } catch (err) {
      this.#failed(err)
      return undefined
    }
  }

  async set(key: string, value: Buffer, ttlMs: number): Promise<boolean> {
    if (!this.#usable() || ttlMs <= 0) return false
    try {
      await this.#timed(this.#client.set(key, value, 'PX', Math.ceil(ttlMs)))
      this.#succeeded()
      return true
    } catch (err) {
      this.#failed(err)
      return false
    }
  }

  async delete(key: string): Promise<boolean> {
    try {
      const n = await this.#client.unlink(key)
      this.#succeeded()
      return n > 0
    } catch (err) {
      this.#failed(err)
      throw err
    }
  }

  async flush(prefixes: readonly string[]): Promise<number> {
    const nodes: Redis[] = this.#isCluster() ? (this.#client as Cluster).nodes('master') : [this.#client as Redis]
    let deleted = 0
    try {
      for (const node of nodes) {
        for (const prefix of prefixes) {
          let cursor = '0'
          do {
            const [next, keys] = await node.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', SCAN_COUNT)
            cursor = next
            if (keys.length === 0) continue
            if (this.#isCluster()) {
              // Keys of one UNLINK must share a slot in a cluster (CROSSSLOT otherwise), and the
              // keys of one SCAN page do not: one single-key UNLINK each, pipelined on the node
              // that holds them.
              const results = await node.pipeline(keys.map((k) => ['unlink', k])).exec()
              for (const [err, n] of results ?? []) if (err === null && typeof n === 'number') deleted += n
            } else {
              deleted += await node.unlink(...keys)
            }
          } while (cursor !== '0')
        }
      }
      this.#succeeded()
      return deleted
    } catch (err) {
      this.#failed(err)
      throw err
    }
  }

  async claim(lockKey: string, ttlMs: number): Promise<boolean> {
    if (!this.#usable()) return true
    try {
      const taken = await this.#timed(this.#client.set(lockKey, this.#token, 'PX', Math.ceil(ttlMs), 'NX'))
      this.#succeeded()
      return taken === 'OK'
    } catch (err) {
      this.#failed(err)
      return true
    }
  }

  async held(lockKey: string): Promise<boolean> {
    if (!this.#usable()) return false
    try {
      const n = await this.#timed(this.#client.exists(lockKey))
      this.#succeeded()
      return n > 0
    } catch (err) {
      this.#failed(err)
      return false
    }
  }

  async release(lockKey: string): Promise<void> {
    if (!this.#usable()) return
    try {
      // One key: safe on a Cluster. Deletes only our own lock, not one another replica took
      // after ours expired.
      await this.#client.eval(RELEASE_SCRIPT, 1, lockKey, this.#token)
      this.#succeeded()
    } catch (err) {
      this.#failed(err)
    }
  }

  usage(_layer: string): LayerUsage {
    return NO_USAGE
  }

  /** Resolves when Redis is up (tests, benchmarks); rejects after `timeoutMs`. */
  whenUp(timeoutMs = 5000): Promise<void> {
    if (this.#state === 'up') return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters.delete(done)
        reject(new Error(`redis not up after ${timeoutMs} ms`))
      }, timeoutMs)
      const done = (): void => {
        clearTimeout(timer)
        resolve()
      }
      this.#waiters.add(done)
    })
  }

  health(): RemoteHealth {
    return { state: this.#state, errors: this.#errors, stateChanges: this.#stateChanges }
  }

  close(): Promise<void> {
    clearTimeout(this.#probeTimer)
    this.#closed ??= this.#client.quit().then(
      () => undefined,
      () => this.#client.disconnect(),
    )
    return this.#closed
  }

  /**
   * `command` within the command timeout. The timeout is decided after the event loop's next
   * I/O turn: timers run before the loop reads its sockets, so after a stretch of busy work (a
   * burst of requests arriving together) a timer can fire while the reply already waits in the
   * socket. Deciding in the check phase, after the reads, counts only replies that really are
   * late; a busy moment of corral's own no longer reads as a failing Redis.
   */
  #timed<T>(command: Promise<T>): Promise<T> {
    const timeoutMs = this.#commandTimeoutMs
    if (timeoutMs === undefined) return command
    return new Promise<T>((resolve, reject) => {
      let settled = false
      const timer = setTimeout(() => {
        setImmediate(() => {
          if (settled) return
          settled = true
          reject(new Error('Command timed out'))
        })
      }, timeoutMs)
      command.then(
        (value) => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          resolve(value)
        },
        (err: unknown) => {
          if (settled) return
          settled = true
          clearTimeout(timer)
          reject(err instanceof Error ? err : new Error(String(err)))
        },
      )
    })
  }

  #isCluster(): boolean {
    return (this.#client as { isCluster?: boolean }).isCluster === true
  }

  /** Whether a command may go to Redis now: only while up (connecting or down, it is skipped). */
  #usable(): boolean {
    return this.#state === 'up'
  }

  /** One PING to see whether Redis answers again (at most one at a time). */
  #probe(): void {
    if (this.#probing || this.#closed !== undefined) return
    this.#probing = true
    this.#client.ping().then(
      () => {
        this.#probing = false
        this.#succeeded()
      },
      (err: unknown) => {
        this.#probing = false
        this.#failed(err)
      },
    )
  }

  /** While down, a probe one retry interval from now (its failure schedules the next). */
  #scheduleProbe(): void {
    if (this.#probeTimer !== undefined || this.#closed !== undefined) return
    this.#probeTimer = setTimeout(() => {
      this.#probeTimer = undefined
      if (this.#state === 'down') this.#probe()
    }, this.#retryIntervalMs)
    this.#probeTimer.unref()
  }

  #succeeded(): void {
    this.#consecutiveFailures = 0
    if (this.#state === 'up') return
    const first = this.#state === 'connecting'
    this.#state = 'up'
    this.#stateChanges++
    if (first) this.#logger.info('redis connected')
    else this.#logger.info({ errors: this.#errors }, 'redis up: cache reads and writes resume')
    for (const resolve of this.#waiters) resolve()
    this.#waiters.clear()
  }

  #failed(err: unknown): void {
    this.#errors++
    // A failed command on a cluster is most often a master that died: ask for the slot map
    // again so a promoted replica is used as soon as it takes over (concurrent calls coalesce).
    if (this.#isCluster() && this.#closed === undefined) (this.#client as Cluster).refreshSlotsCache()
    if (this.#closed !== undefined) return
    if (this.#state === 'down') {
      this.#scheduleProbe()
      return
    }
    // A probe or a connection error while connecting counts at once; commands of a working
    // connection after FAILURES_TO_OPEN in a row.
    if (this.#state === 'up' && ++this.#consecutiveFailures < FAILURES_TO_OPEN) return
    this.#state = 'down'
    this.#stateChanges++
    this.#logger.warn(
      { err: err instanceof Error ? err.message : String(err), retry_ms: this.#retryIntervalMs },
      'redis down: cache skips it (requests are answered as misses) until it answers again',
    )
    this.#scheduleProbe()
  }
}
