/**
 * Applies configuration reloads to a running corral: one place that knows which part takes
 * which setting. A reload is computed first (`planReload`), then applied synchronously, so no
 * request ever sees part of the old configuration and part of the new; settings that need a
 * restart keep their running values. Every reload, applied or rejected, is logged once and
 * counted in the metrics.
 */
import type { Server } from 'node:http'
import type { Logger } from 'pino'
import type { Authenticator } from './auth/authenticator.js'
import type { Balancer } from './balancer/balancer.js'
import type { HealthChecker } from './balancer/health-checker.js'
import type { ModelDiscovery } from './balancer/model-discovery.js'
import type { OllamaCache } from './cache/ollama-cache.js'
import type { Config } from './config/config.js'
import { ConfigError } from './config/load-config.js'
import { maskUrlPasswords } from './config/mask-secrets.js'
import { planReload } from './config/reload-plan.js'
import type { ConfigSource, ReloadListener, ReloadResult } from './config/reload-result.js'
import type { ClientAddresses } from './limits/client-address.js'
import type { ClientLimiter } from './limits/client-limiter.js'
import type { Metrics } from './observability/metrics.js'
import type { ClusterViews } from './proxy/cluster-views.js'
import type { Proxy } from './proxy/proxy.js'
import { maxConnectionsOf } from './server.js'

/** The parts a reload reconfigures. */
export interface ReloadTargets {
  balancer: Balancer
  health: HealthChecker
  discovery: ModelDiscovery
  views: ClusterViews
  proxy: Proxy
  /** The built-in cache; undefined when one was injected. */
  cache: OllamaCache | undefined
  server: Server
  logger: Logger
  metrics: Metrics | undefined
  /** Keys, JWT settings and limits; optional so parts can be reloaded without auth (tests). */
  auth?: Authenticator | undefined
  /** `server.trust_proxy`. */
  addresses?: ClientAddresses | undefined
  /** `server.max_requests_per_client`. */
  perClient?: ClientLimiter | undefined
}

export class Reloader {
  readonly #targets: ReloadTargets
  readonly #source: ConfigSource | undefined
  readonly #listeners: ReloadListener[] = []
  #current: Config
  #stopped = false

  constructor(config: Config, targets: ReloadTargets, source: ConfigSource | undefined) {
    this.#current = config
    this.#targets = targets
    this.#source = source
  }

  /** The configuration running now. */
  get current(): Config {
    return this.#current
  }

  /** Subscribes to applied reloads; a listener that throws is logged and the others still run. */
  onReload(listener: ReloadListener): void {
    this.#listeners.push(listener)
  }

  /** Refuses reloads from now on (shutdown). */
  stop(): void {
    this.#stopped = true
  }

  /** Applies `next` (already validated). */
  apply(next: Config, trigger = 'api'): ReloadResult {
    if (this.#stopped) return { status: 'unavailable', error: 'corral is shutting down' }
    const { balancer, health, discovery, views, proxy, cache, server, logger, metrics, auth, addresses, perClient } = this.#targets
    const prev = this.#current
    const { applied, changes, restartRequired } = planReload(prev, next)
    // Auth goes first because it is the one part that can still refuse (key material that cannot
    // be read): then nothing is applied and the running configuration is kept whole.
    try {
      auth?.reconfigure(applied.auth)
    } catch (err) {
      const problems = [maskUrlPasswords(`auth: ${err instanceof Error ? err.message : String(err)}`)]
      metrics?.recordReload('invalid')
      logger.error({ trigger, problems }, `config reload rejected, running config kept: ${problems.join('; ')}`)
      return { status: 'invalid', error: `invalid config: ${problems.join('; ')}`, problems }
    }
    // Everything below is synchronous: no request sees part of the old and part of the new.
    const fleet = balancer.reconfigure(applied)
    health.reconfigure(applied.health)
    discovery.reconfigure(applied.health)
    for (const instance of fleet.added) {
      if (health.started) void health.check(instance)
      if (discovery.started) void discovery.refresh(instance)
    }
    metrics?.trackInstances(fleet.added)
    views.reconfigure(applied.proxy)
    proxy.reconfigure(applied.proxy, applied.limits)
    cache?.reconfigure(applied.cache)
    server.headersTimeout = applied.server.headersTimeoutMs
    server.requestTimeout = applied.server.requestTimeoutMs
    server.keepAliveTimeout = applied.server.keepAliveTimeoutMs
    server.maxConnections = maxConnectionsOf(applied.server)
    addresses?.reconfigure(applied.server.trustProxy)
    if (perClient !== undefined) perClient.max = applied.server.maxRequestsPerClient
    logger.level = applied.logLevel
    this.#current = applied
    for (const listener of this.#listeners) {
      try {
        listener(applied, prev)
      } catch (err) {
        logger.error({ err }, 'reload listener failed')
      }
    }
    metrics?.recordReload('ok')
    const fields = { trigger, changes, restart_required: restartRequired }
    if (restartRequired.length > 0) logger.warn(fields, `config reloaded; needs a restart to apply: ${restartRequired.join(', ')}`)
    else logger.info(fields, changes.length === 0 ? 'config reloaded: no changes' : 'config reloaded')
    return { status: 'reloaded', changes, restartRequired }
  }

  /** Reads the configuration again from the source and applies it; never throws. */
  fromSource(trigger: string): ReloadResult {
    const { logger, metrics } = this.#targets
    const source = this.#source
    if (source?.file === undefined || this.#stopped) {
      const error = this.#stopped ? 'corral is shutting down' : 'corral was started without a config file: there is nothing to reload'
      logger.warn({ trigger }, `config reload refused: ${error}`)
      return { status: 'unavailable', error }
    }
    let next: Config
    try {
      next = source.load()
    } catch (err) {
      const problems = err instanceof ConfigError ? err.problems : [maskUrlPasswords(err instanceof Error ? err.message : String(err))]
      metrics?.recordReload('invalid')
      logger.error({ trigger, file: source.file, problems }, `config reload rejected, running config kept: ${problems.join('; ')}`)
      return { status: 'invalid', error: `invalid config in ${source.file}: ${problems.join('; ')}`, problems }
    }
    return this.apply(next, trigger)
  }
}
