/**
 * Where cached values live. Values are opaque bytes with a TTL; the cache decides what they mean.
 * Implementations: {@link MemoryStore} (the embedded default), {@link RedisStore} (shared) and
 * {@link TieredStore} (a small memory tier in front of Redis). Every implementation passes the
 * same contract suite (test/fixtures/cache-store-contract.ts, run by test/cache/memory-store.ts and
 * test/cache/redis-store.ts).
 */

/** A value read from a store. */
export interface CacheEntry {
  readonly value: Buffer
  /**
   * The decoded form of `value` (a rendered vector, a parsed answer), memoised by the cache. It
   * lives as long as the entry object: across hits when the entry is held in memory, for one
   * request when it came from Redis.
   */
  view: unknown
}

/** What a store holds in this process for one layer. */
export interface LayerUsage {
  entries: number
  bytes: number
  /** Entries dropped to make room (not TTL expiries). */
  evictions: number
}

/** Health of a remote store. */
export interface RemoteHealth {
  /** `connecting` until the first connection is ready (requests skip it meanwhile). */
  readonly state: 'connecting' | 'up' | 'down'
  /** Failed commands and connection errors so far. */
  readonly errors: number
  /** Times the state changed (each logged once). */
  readonly stateChanges: number
}

export interface CacheStore {
  /** `memory` or `redis` (also when Redis has a memory tier in front). */
  readonly kind: 'memory' | 'redis'
  /** The entry under `key`; undefined when absent, expired, or the store is failing (fail-open). */
  get(key: string): CacheEntry | undefined | Promise<CacheEntry | undefined>
  /**
   * Stores `value` for `ttlMs`; resolves false when it was not stored. Never rejects. `view` is
   * the decoded form, kept with the entry by stores that hold it in memory.
   */
  set(key: string, value: Buffer, ttlMs: number, view?: unknown): Promise<boolean>
  /** Removes `key`; resolves whether it was there. Rejects when the store is failing (admin calls answer 503). */
  delete(key: string): Promise<boolean>
  /**
   * Removes every key that starts with one of `prefixes`; resolves with how many. Never FLUSHALL.
   * Rejects when the store is failing.
   */
  flush(prefixes: readonly string[]): Promise<number>
  /** What this process holds for `layer` (for Redis: its memory tier). */
  usage(layer: string): LayerUsage
  /** Remote state, when the store is remote. */
  health(): RemoteHealth | undefined
  /**
   * Single flight across replicas (Redis): takes the lock `lockKey` for `ttlMs` if nobody holds
   * it (SET NX PX, with a token of this process). Resolves true when taken, and also when the
   * store fails (fail-open: the caller goes upstream as without the lock); false when held.
   */
  claim?(lockKey: string, ttlMs: number): Promise<boolean>
  /** Whether anyone holds `lockKey`; false when the store fails. */
  held?(lockKey: string): Promise<boolean>
  /** Releases `lockKey` if this process holds it (compare and delete). Never rejects. */
  release?(lockKey: string): Promise<void>
  /** Resolves when a remote store is up (at once for a local one); rejects after `timeoutMs`. */
  whenUp?(timeoutMs?: number): Promise<void>
  /** Releases connections and timers. Idempotent. */
  close(): Promise<void>
}
