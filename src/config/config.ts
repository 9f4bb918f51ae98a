/**
 * The runtime configuration: validated, defaulted, with durations in ms and sizes in bytes, and
 * frozen. Nothing downstream re-checks it.
 */
import type { LOG_LEVELS, ConfigFile } from './schema.js'
import type { CACHE_LAYERS, INFERENCE_POLICIES } from './cache-schema.js'
import { parseHostPort } from './schema-fields.js'
import { parseDuration, parseSize } from './units.js'
import type { PolicyName } from './policy-names.js'
import { compileAuth, type AuthConfig } from './auth-config.js'

export type { AuthConfig, ApiKeyConfig, JwtConfig, KeyLimits } from './auth-config.js'

export interface InstanceConfig {
  /** Unique; host:port of the url unless configured. */
  readonly name: string
  /** Origin without a trailing slash. */
  readonly url: string
  readonly weight: number
  /** Most model requests of one kind at once (OLLAMA_NUM_PARALLEL); undefined (the default): learned. */
  readonly maxConcurrency: number | undefined
}

export interface BalancerConfig {
  readonly policy: PolicyName
  readonly maxQueue: number
  readonly queueTimeoutMs: number
  readonly failurePenaltyMs: number
  readonly failureDecayMs: number
  readonly coldModelPenaltyMs: number
  readonly slowStartMs: number
  readonly affinity: {
    /** Lower-cased header name, or undefined. */
    readonly header: string | undefined
    readonly prefixBytes: number
    readonly tolerance: number
  }
  readonly priority: PriorityConfig
}

/** Priority classes and fair shares (`balancer.priority`). */
export interface PriorityConfig {
  /** Embedding requests with at least this many inputs are bulk (`bulk_batch_size`). Default 8. */
  readonly bulkBatchSize: number
  /** Share of each instance's slots kept from bulk, rounded down (`bulk_reserve`). Default 0.25. */
  readonly bulkReserve: number
  /** Bulk waiting this long in ms is served as interactive (`bulk_max_wait`). Default 10 s. */
  readonly bulkMaxWaitMs: number
  /**
   * Bulk embedding batches larger than this many inputs go to the instances in parts of at most
   * this many (`bulk_part_size`), while interactive requests come; 0: never split. Default 16.
   */
  readonly bulkPartSize: number
}

export interface HealthConfig {
  readonly intervalMs: number
  readonly timeoutMs: number
  readonly unhealthyAfter: number
  readonly healthyAfter: number
  /** 0: passive ejection off. */
  readonly ejectAfter: number
  readonly ejectionTimeMs: number
  readonly maxEjectionTimeMs: number
  readonly modelsIntervalMs: number
}

/** Name of a cache layer. */
export type CacheLayerName = (typeof CACHE_LAYERS)[number]
/** When generations are cached. */
export type InferencePolicy = (typeof INFERENCE_POLICIES)[number]

/** One cache layer. */
export interface CacheLayerConfig {
  /** Whether the layer caches at all (`enabled`). Default true. */
  readonly enabled: boolean
  /** How long an entry is kept, in ms (`ttl`). Defaults: embedding 7 d, chunk 30 d, inference 24 h. */
  readonly ttlMs: number
}

/** The response cache (`cache`). */
export interface CacheConfig {
  /** Cache answers at all (`enabled`). Default true. */
  readonly enabled: boolean
  /** Add `X-Corral-Cache: hit | miss | bypass | coalesced` to answers (`response_header`). Default true. */
  readonly responseHeader: boolean
  /** Largest answer kept, in bytes (`max_entry_size`); larger ones are relayed, not stored. Default 8 MiB. */
  readonly maxEntryBytes: number
  /** Identical cacheable requests in flight reach an instance once (`single_flight`). Default true. */
  readonly singleFlight: boolean
  /**
   * With auth on, every key shares the cache's entries and single flights (`share_across_keys`).
   * Default false: entries are partitioned by key, cache group or JWT subject.
   */
  readonly shareAcrossKeys: boolean
  /** Bytes the in-memory store may hold (`memory.max_size`), when there is no Redis. Default 256 MiB. */
  readonly memoryMaxBytes: number
  /** The three layers (`layers`). */
  readonly layers: {
    readonly embedding: CacheLayerConfig
    readonly chunk: CacheLayerConfig
    /** Plus `policy`: deterministic (default), always or off. */
    readonly inference: CacheLayerConfig & { readonly policy: InferencePolicy }
  }
}

/** Redis for the shared cache (`redis`): exactly one of `url`, `sentinels` (+ `name`), `cluster` is set. */
export interface RedisConfig {
  /** redis:// or rediss:// URL of a single node (`url`). Default none. */
  readonly url: string | undefined
  /** Sentinel addresses (`sentinels`, host:port). Default none. */
  readonly sentinels: readonly { readonly host: string; readonly port: number }[] | undefined
  /** Master name the sentinels watch (`name`). Default none. */
  readonly name: string | undefined
  /** Cluster seed node URLs (`cluster`). Default none. */
  readonly cluster: readonly string[] | undefined
  /** Password for sentinel-managed or cluster nodes (`password`). Default none. */
  readonly password: string | undefined
  /** TLS for sentinel-managed or cluster nodes (`tls`). Default false. */
  readonly tls: boolean
  /** Longest wait for one command, in ms (`command_timeout`). Default 50. */
  readonly commandTimeoutMs: number
  /** While Redis fails, it is probed again after this many ms (`retry_interval`). Default 1000. */
  readonly retryIntervalMs: number
  /** Prefix of every key corral writes (`key_prefix`). Default `corral:`. */
  readonly keyPrefix: string
  /** Bytes of the in-process tier in front of Redis (`local_cache_size`); 0: none. Default 32 MiB. */
  readonly localCacheBytes: number
  /** Longest stay of an entry in that tier, in ms (`local_ttl`). Default 300000. */
  readonly localTtlMs: number
  /** Single flight across replicas through a Redis lock per generation key (`single_flight`). Default false. */
  readonly singleFlight: boolean
  /** Lifetime of that lock, in ms: the longest a replica waits for another's answer (`lock_ttl`). Default 30000. */
  readonly lockTtlMs: number
}

export interface Config {
  readonly listen: { readonly host: string; readonly port: number }
  readonly instances: readonly InstanceConfig[]
  readonly redis: RedisConfig | undefined
  readonly cache: CacheConfig
  readonly logLevel: (typeof LOG_LEVELS)[number]
  readonly metrics: {
    /** Serve `GET /metrics` (`enabled`). Default true. */
    readonly enabled: boolean
    /** A second address that serves `GET /metrics` too (`listen`); undefined: none. Default none. */
    readonly listen: { readonly host: string; readonly port: number } | undefined
  }
  /** Authentication, admin scope and per-key limits (`auth`). Off by default. */
  readonly auth: AuthConfig
  readonly balancer: BalancerConfig
  readonly health: HealthConfig
  readonly proxy: {
    readonly maxAttempts: number
    /** Statuses that fail a model request over to another instance before any byte reached the client (`retry_on`). Default 500, 502, 503, 504. */
    readonly retryOn: readonly number[]
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
    /** Client connections open at once (`max_connections`); 0: no limit. Default 0. */
    readonly maxConnections: number
    /** Requests in flight per client address (`max_requests_per_client`); 0: no limit. Default 0. */
    readonly maxRequestsPerClient: number
    /**
     * Which peers' X-Forwarded-* headers are believed (`trust_proxy`): none (false, the default),
     * all (true), or those in the listed addresses/CIDRs.
     */
    readonly trustProxy: boolean | readonly string[]
  }
  readonly limits: LimitsConfig
}

/** The kinds of route with their own body limit (`limits.max_body_size.*`). */
export type BodyKind = 'generation' | 'embedding' | 'model' | 'upload' | 'other'

/** Request limits (`limits`). */
export interface LimitsConfig {
  /** Largest request body per kind of route, in bytes; 0: no limit. Defaults 32 MiB, 16 MiB, 1 MiB, none, 32 MiB. */
  readonly maxBodyBytes: Readonly<Record<BodyKind, number>>
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
          singleFlight: file.redis.single_flight,
          lockTtlMs: ms(file.redis.lock_ttl),
        }
      : undefined,
    cache: {
      enabled: file.cache.enabled,
      responseHeader: file.cache.response_header,
      maxEntryBytes: bytes(file.cache.max_entry_size),
      singleFlight: file.cache.single_flight,
      shareAcrossKeys: file.cache.share_across_keys,
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
    metrics: {
      enabled: file.metrics.enabled,
      listen: file.metrics.listen == null ? undefined : parseHostPort(file.metrics.listen)!,
    },
    auth: compileAuth(file.auth),
    balancer: {
      policy: file.balancer.policy,
      maxQueue: file.balancer.max_queue,
      queueTimeoutMs: ms(file.balancer.queue_timeout),
      failurePenaltyMs: ms(file.balancer.failure_penalty),
      failureDecayMs: ms(file.balancer.failure_decay),
      coldModelPenaltyMs: ms(file.balancer.cold_model_penalty),
      slowStartMs: ms(file.balancer.slow_start),
      affinity: {
        header: file.balancer.affinity.header?.toLowerCase(),
        prefixBytes: file.balancer.affinity.prefix_bytes,
        tolerance: file.balancer.affinity.tolerance,
      },
      priority: {
        bulkBatchSize: file.balancer.priority.bulk_batch_size,
        bulkReserve: file.balancer.priority.bulk_reserve,
        bulkMaxWaitMs: ms(file.balancer.priority.bulk_max_wait),
        bulkPartSize: file.balancer.priority.bulk_part_size,
      },
    },
    health: {
      intervalMs: ms(file.health.interval),
      timeoutMs: ms(file.health.timeout),
      unhealthyAfter: file.health.unhealthy_after,
      healthyAfter: file.health.healthy_after,
      ejectAfter: file.health.eject_after,
      ejectionTimeMs: ms(file.health.ejection_time),
      maxEjectionTimeMs: ms(file.health.max_ejection_time),
      modelsIntervalMs: ms(file.health.models_interval),
    },
    proxy: {
      maxAttempts: file.proxy.max_attempts,
      retryOn: Object.freeze([...new Set(file.proxy.retry_on)]),
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
      maxConnections: file.server.max_connections,
      maxRequestsPerClient: file.server.max_requests_per_client,
      trustProxy: file.server.trust_proxy,
    },
    limits: {
      maxBodyBytes: {
        generation: bytes(file.limits.max_body_size.generation),
        embedding: bytes(file.limits.max_body_size.embedding),
        model: bytes(file.limits.max_body_size.model),
        upload: bytes(file.limits.max_body_size.upload),
        other: bytes(file.limits.max_body_size.other),
      },
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
