/**
 * The runtime configuration: validated, defaulted, with durations in ms and sizes in bytes, and
 * frozen. Nothing downstream re-checks it.
 */
import type { LOG_LEVELS, ConfigFile, CACHE_LAYERS, INFERENCE_POLICIES } from './schema.js'
import { parseHostPort } from './schema.js'
import { parseDuration, parseSize } from './units.js'
import type { PolicyName } from '../balancer/policies.js'

export interface InstanceConfig {
  /** Unique; host:port of the url unless configured. */
  readonly name: string
  /** Origin without a trailing slash. */
  readonly url: string
  readonly weight: number
  /** Undefined: no limit. */
  readonly maxConcurrency: number | undefined
}

/** Name of a cache layer. */
export type CacheLayerName = (typeof CACHE_LAYERS)[number]
/** When generations are cached. */
export type InferencePolicy = (typeof INFERENCE_POLICIES)[number]

/** One cache layer. */
export interface CacheLayerConfig {
  readonly enabled: boolean
  /** How long an entry is kept, in ms. */
  readonly ttlMs: number
}

/** The response cache. */
export interface CacheConfig {
  readonly enabled: boolean
  /** Add `X-Corral-Cache` to answers. */
  readonly responseHeader: boolean
  /** Largest answer kept, in bytes. */
  readonly maxEntryBytes: number
  /** Coalesce identical requests in flight. */
  readonly singleFlight: boolean
  /** Bytes the in-memory store may hold. */
  readonly memoryMaxBytes: number
  readonly layers: {
    readonly embedding: CacheLayerConfig
    readonly chunk: CacheLayerConfig
    readonly inference: CacheLayerConfig & { readonly policy: InferencePolicy }
  }
}

/** Redis for the shared cache: exactly one of `url`, `sentinels` (+ `name`), `cluster` is set. */
export interface RedisConfig {
  readonly url: string | undefined
  readonly sentinels: readonly { readonly host: string; readonly port: number }[] | undefined
  readonly name: string | undefined
  readonly cluster: readonly string[] | undefined
  readonly password: string | undefined
  readonly tls: boolean
  readonly commandTimeoutMs: number
  readonly retryIntervalMs: number
  readonly keyPrefix: string
  /** Bytes of the in-process tier in front of Redis; 0: none. */
  readonly localCacheBytes: number
  readonly localTtlMs: number
}

export interface Config {
  readonly listen: { readonly host: string; readonly port: number }
  readonly instances: readonly InstanceConfig[]
  readonly redis: RedisConfig | undefined
  readonly cache: CacheConfig
  readonly logLevel: (typeof LOG_LEVELS)[number]
  readonly balancer: { readonly policy: PolicyName }
  readonly proxy: {
    readonly maxAttempts: number
    readonly maxBodyBytes: number
    readonly connectTimeoutMs: number
    readonly firstByteTimeoutMs: number
    readonly idleTimeoutMs: number
    readonly connectionsPerInstance: number
  }
  readonly server: {
    readonly headersTimeoutMs: number
    readonly requestTimeoutMs: number
    readonly keepAliveTimeoutMs: number
    readonly drainTimeoutMs: number
    readonly maxHeaderBytes: number
  }
}

const ms = (v: string | number): number => parseDuration(v)!
const bytes = (v: string | number): number => parseSize(v)!

/** Turns a validated `ConfigFile` into the frozen runtime `Config`. */
export function compileConfig(file: ConfigFile): Config {
  const config: Config = {
    listen: parseHostPort(file.listen)!,
    instances: file.instances.map((i) => {
      const url = new URL(i.url)
      return { name: i.name ?? url.host, url: url.origin, weight: i.weight, maxConcurrency: i.max_concurrency }
    }),
    redis: file.redis
      ? {
          url: file.redis.url ?? undefined,
          sentinels: file.redis.sentinels?.map((s) => parseHostPort(s)!),
          name: file.redis.name ?? undefined,
          cluster: file.redis.cluster ?? undefined,
          password: file.redis.password ?? undefined,
          tls: file.redis.tls,
          commandTimeoutMs: ms(file.redis.command_timeout),
          retryIntervalMs: ms(file.redis.retry_interval),
          keyPrefix: file.redis.key_prefix,
          localCacheBytes: bytes(file.redis.local_cache_size),
          localTtlMs: ms(file.redis.local_ttl),
        }
      : undefined,
    cache: {
      enabled: file.cache.enabled,
      responseHeader: file.cache.response_header,
      maxEntryBytes: bytes(file.cache.max_entry_size),
      singleFlight: file.cache.single_flight,
      memoryMaxBytes: bytes(file.cache.memory.max_size),
      layers: {
        embedding: { enabled: file.cache.layers.embedding.enabled, ttlMs: ms(file.cache.layers.embedding.ttl) },
        chunk: { enabled: file.cache.layers.chunk.enabled, ttlMs: ms(file.cache.layers.chunk.ttl) },
        inference: {
          enabled: file.cache.layers.inference.enabled,
          ttlMs: ms(file.cache.layers.inference.ttl),
          policy: file.cache.layers.inference.policy,
        },
      },
    },
    logLevel: file.log.level,
    balancer: { policy: file.balancer.policy },
    proxy: {
      maxAttempts: file.proxy.max_attempts,
      maxBodyBytes: bytes(file.proxy.max_body_size),
      connectTimeoutMs: ms(file.proxy.connect_timeout),
      firstByteTimeoutMs: ms(file.proxy.first_byte_timeout),
      idleTimeoutMs: ms(file.proxy.idle_timeout),
      connectionsPerInstance: file.proxy.connections_per_instance,
    },
    server: {
      headersTimeoutMs: ms(file.server.headers_timeout),
      requestTimeoutMs: ms(file.server.request_timeout),
      keepAliveTimeoutMs: ms(file.server.keep_alive_timeout),
      drainTimeoutMs: ms(file.server.drain_timeout),
      maxHeaderBytes: bytes(file.server.max_header_size),
    },
  }
  return deepFreeze(config)
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const v of Object.values(value)) deepFreeze(v)
  }
  return value
}
