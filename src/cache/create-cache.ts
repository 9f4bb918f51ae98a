import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import { CacheRoutes } from './cache-routes.js'
import type { CacheStore } from './cache-store.js'
import { KeySpace } from './cache-key.js'
import { MemoryStore } from './memory-store.js'
import { OllamaCache } from './ollama-cache.js'
import { createRedisClient } from '../redis/redis-client.js'
import { RedisStore } from './redis-store.js'
import { TieredStore } from './tiered-store.js'

/** Key prefix of the memory store (Redis uses `redis.key_prefix`). */
const MEMORY_PREFIX = 'corral:'
/**
 * The share of the process-memory bound (`cache.memory.max_size`, or `redis.local_cache_size`)
 * kept for the rendered text of hot vectors; the entries themselves get the rest.
 */
const RENDERED_SHARE = 1 / 8

export interface CacheParts {
  cache: OllamaCache
  routes: CacheRoutes
}

/**
 * Builds the cache from the configuration: the memory store, or Redis (with its memory tier
 * unless `local_cache_size` is 0). `store` replaces the configured store (tests).
 */
export function createCache(
  config: Config,
  deps: { logger: Logger; digestOf: (model: string) => string | undefined; store?: CacheStore },
): CacheParts {
  const logger = deps.logger.child({ part: 'cache' })
  const prefix = config.redis?.keyPrefix ?? MEMORY_PREFIX
  const keys = new KeySpace(prefix)
  const memoryBytes = config.redis === undefined ? config.cache.memoryMaxBytes : config.redis.localCacheBytes
  const renderedBytes = Math.floor(memoryBytes * RENDERED_SHARE)
  const memory = (): MemoryStore =>
    new MemoryStore({
      maxBytes: memoryBytes - renderedBytes,
      maxEntryBytes: config.cache.maxEntryBytes,
      layerOf: (key) => keys.layerOf(key),
    })
  let store = deps.store
  if (store === undefined) {
    if (config.redis === undefined) {
      store = memory()
    } else {
      // The client's own timeout is a backstop; the store applies `command_timeout` itself, judged
      // after the event loop has read its sockets (see RedisStore).
      const client = createRedisClient({ ...config.redis, commandTimeoutMs: Math.max(1000, 10 * config.redis.commandTimeoutMs) })
      const redis = new RedisStore({ client, retryIntervalMs: config.redis.retryIntervalMs, commandTimeoutMs: config.redis.commandTimeoutMs, logger })
      store = config.redis.localCacheBytes > 0 ? new TieredStore(memory(), redis, config.redis.localTtlMs) : redis
    }
  }
  const replicaLockTtlMs = config.redis?.singleFlight === true && config.cache.singleFlight ? config.redis.lockTtlMs : undefined
  const cache = new OllamaCache({
    config: config.cache,
    store,
    keyPrefix: prefix,
    digestOf: deps.digestOf,
    logger,
    replicaLockTtlMs,
    renderedBytes: deps.store === undefined ? renderedBytes : 0,
  })
  return { cache, routes: new CacheRoutes(cache) }
}
