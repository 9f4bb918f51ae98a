/**
 * The runtime configuration: validated, defaulted, with durations in ms and sizes in bytes, and
 * frozen. Nothing downstream re-checks it.
 */
import type { LOG_LEVELS, ConfigFile } from './schema.js'
import { parseHostPort } from './schema.js'
import { parseDuration, parseSize } from './units.js'
import type { PolicyName } from '../balancer/policies.js'

export interface InstanceConfig {
  /** Unique; host:port of the url unless configured. */
  readonly name: string
  /** Origin without a trailing slash. */
  readonly url: string
  readonly weight: number
  /** Most model requests at once (OLLAMA_NUM_PARALLEL). */
  readonly maxConcurrency: number
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

export interface Config {
  readonly listen: { readonly host: string; readonly port: number }
  readonly instances: readonly InstanceConfig[]
  readonly redis: { readonly url: string } | undefined
  readonly logLevel: (typeof LOG_LEVELS)[number]
  readonly balancer: BalancerConfig
  readonly health: HealthConfig
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
    redis: file.redis ? { url: file.redis.url } : undefined,
    logLevel: file.log.level,
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
