/**
 * `createCorral` wires the real parts together: balancer (instances and their pools), cache,
 * proxy and HTTP server. It is the one place that does, so tests and the CLI build corral the same
 * way.
 */
import type { Server } from 'node:http'
import { Registry } from 'prom-client'
import type { AddressInfo } from 'node:net'
import { Balancer } from './balancer/balancer.js'
import type { Instance } from './balancer/instance.js'
import { HealthChecker } from './balancer/health-checker.js'
import { ModelDiscovery } from './balancer/model-discovery.js'
import { Readiness } from './balancer/readiness.js'
import type { CacheStore } from './cache/cache-store.js'
import { createCache } from './cache/create-cache.js'
import type { OllamaCache } from './cache/ollama-cache.js'
import type { RequestCache } from './cache/request-cache.js'
import type { Config } from './config/config.js'
import type { ConfigSource, ReloadListener, ReloadResult } from './config/reload-result.js'
import { loadBalancerStats } from './observability/load-balancer-stats.js'
import { createLogger, flushLogger, type Logger } from './observability/logger.js'
import { Metrics } from './observability/metrics.js'
import { createMetricsServer } from './observability/metrics-server.js'
import { RequestWindow } from './observability/request-window.js'
import { ClusterViews } from './proxy/cluster-views.js'
import { Proxy } from './proxy/proxy.js'
import { Reloader } from './reloader.js'
import { createHttpServer } from './server.js'
import { Authenticator } from './auth/authenticator.js'
import { ClientAddresses } from './limits/client-address.js'
import { ClientLimiter } from './limits/client-limiter.js'

export type { Config } from './config/config.js'
export { loadConfig, ConfigError } from './config/load-config.js'

export type { ConfigSource, ReloadListener, ReloadResult } from './config/reload-result.js'

export interface CorralDeps {
  logger?: Logger
  /** Replaces the cache built from the configuration (and its own routes). */
  cache?: RequestCache
  /** Replaces the configured cache store (tests). */
  cacheStore?: CacheStore
  /** Replaces `balancer.digestOf` in cache keys (tests). */
  digestOf?: (model: string) => string | undefined
  /** The registry metrics are created on (default: a new one per corral; never the global one). */
  registry?: Registry
  /** Clock of the per-key minute windows, ms since the epoch (tests). Default Date.now. */
  now?: () => number
  /** Where `reloadFromSource` reads the configuration again; without it, only `reload(config)` works. */
  configSource?: ConfigSource
}

export interface Corral {
  /** The configuration running now (a reload replaces it). */
  readonly config: Config
  readonly server: Server
  readonly balancer: Balancer
  readonly proxy: Proxy
  readonly logger: Logger
  /** The cache built from the configuration; undefined when `deps.cache` replaced it. */
  readonly cache: OllamaCache | undefined
  /** Prometheus metrics; undefined when `metrics.enabled` is false. */
  readonly metrics: Metrics | undefined
  /** Admits requests (API keys, JWT, scopes, per-key limits); `auth.reconfigure` swaps its settings at run time. */
  readonly auth: Authenticator
  /** Requests in flight per client address (`server.max_requests_per_client`; off at 0). */
  readonly perClient: ClientLimiter
  /** Base URL of the separate metrics listener once listening; undefined when none is configured. */
  metricsUrl(): string | undefined
  /** Starts listening; resolves with the base URL (the port is real when 0 was configured). */
  listen(): Promise<string>
  /**
   * Resolves once the first model discovery after `listen` is done. Requests are served before
   * that; the cache only passes them through until it knows their model's digest.
   */
  discovered(): Promise<void>
  /**
   * Applies `next` at once, without dropping a request: instances added, removed (drained),
   * re-weighted; balancer, health, cache, proxy and server timeouts and the log level changed.
   * Settings that need a restart keep their running values and are listed in the result.
   * Logs one line and counts the reload in the metrics.
   */
  reload(next: Config, trigger?: string): ReloadResult
  /**
   * Reads the configuration again from `deps.configSource` and applies it; an invalid one is
   * logged (error level, every problem) and counted, and the running one kept. Never throws.
   */
  reloadFromSource(trigger: string): ReloadResult
  /** Subscribes to applied reloads (other parts that hold configuration: auth keys, limits). */
  onReload(listener: ReloadListener): void
  /** Resolves once every instance removed by a reload has finished its requests and closed its pool. */
  retired(): Promise<void>
  /**
   * Graceful stop: stops accepting, lets requests in flight (streams too) finish for up to
   * `drainTimeoutMs`, then closes every connection and pool. Idempotent.
   */
  close(drainTimeoutMs?: number): Promise<void>
}

export function createCorral(config: Config, deps: CorralDeps = {}): Corral {
  const logger = deps.logger ?? createLogger(config.logLevel)
  const balancer = new Balancer(config, { logger })
  const fleet = (): readonly Instance[] => balancer.instances
  const health = new HealthChecker(fleet, config.health, Date.now, logger)
  const discovery = new ModelDiscovery(fleet, config.health, logger)
  // A recovered instance may have changed its models while it was away.
  balancer.onHealthChange((instance, _from, to) => {
    if (to === 'healthy') void discovery.refresh(instance)
  })
  const window = new RequestWindow()
  const views = new ClusterViews({
    candidates: () => balancer.available(),
    logger,
    config: config.proxy,
    slots: balancer,
    modelsChanged: (instances) => {
      for (const instance of instances) void discovery.refresh(instance)
    },
  })
  const built =
    deps.cache === undefined
      ? createCache(config, {
          logger,
          digestOf: deps.digestOf ?? ((model) => balancer.digestOf(model)),
          ...(deps.cacheStore !== undefined ? { store: deps.cacheStore } : {}),
        })
      : undefined
  const metrics = config.metrics.enabled
    ? new Metrics(deps.registry ?? new Registry(), { balancer, cache: built?.cache })
    : undefined
  const auth = new Authenticator(config.auth, { logger, metrics, redis: config.redis, ...(deps.now !== undefined ? { now: deps.now } : {}) })
  const metricsServer = metrics !== undefined && config.metrics.listen !== undefined ? createMetricsServer(metrics, auth) : undefined
  let metricsUrl: string | undefined
  const addresses = new ClientAddresses(config.server.trustProxy)
  const perClient = new ClientLimiter(config.server.maxRequestsPerClient)
  const proxy = new Proxy({
    balancer,
    cache: deps.cache ?? built!.cache,
    logger,
    config: config.proxy,
    limits: config.limits,
    addresses,
    window,
    views,
    metrics,
  })
  const readiness = new Readiness(fleet)
  let draining = false
  const server = createHttpServer(config.server, {
    proxy,
    readiness,
    cacheRoutes: built?.routes,
    draining: () => draining,
    loadBalancerStats: () => loadBalancerStats(balancer, window),
    metrics,
    auth,
    reload: () => reloader.fromSource('POST /api/admin/reload'),
    addresses,
    perClient,
    logger,
  })
  let closing: Promise<void> | undefined

  const reloader = new Reloader(
    config,
    { balancer, health, discovery, views, proxy, cache: built?.cache, server, logger, metrics, auth, addresses, perClient },
    deps.configSource,
  )

  async function drain(timeoutMs: number): Promise<void> {
    draining = true
    reloader.stop()
    const stopped = new Promise<void>((resolve) => server.close(() => resolve()))
    const metricsStopped = metricsServer?.listening === true ? new Promise<void>((resolve) => metricsServer.close(() => resolve())) : undefined
    metricsServer?.closeAllConnections()
    server.closeIdleConnections()
    let timer: NodeJS.Timeout | undefined
    const timedOut = await Promise.race([
      proxy.whenIdle().then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(resolve, timeoutMs, true))),
    ])
    clearTimeout(timer)
    if (timedOut) logger.warn({ in_flight: proxy.active, timeout_ms: timeoutMs }, 'drain timeout: closing remaining connections')
    server.closeAllConnections()
    await stopped
    await metricsStopped
    await Promise.all([health.close(), discovery.close()])
    await (timedOut ? balancer.destroy() : balancer.close())
    await built?.cache.close()
    await auth.close()
    logger.info('stopped')
    await flushLogger(logger)
  }

  return {
    get config() {
      return reloader.current
    },
    server,
    balancer,
    proxy,
    logger,
    cache: built?.cache,
    metrics,
    auth,
    perClient,
    metricsUrl() {
      return metricsUrl
    },
    async listen() {
      if (metricsServer !== undefined && config.metrics.listen !== undefined) {
        metricsUrl = await listenOn(metricsServer, config.metrics.listen)
        metricsServer.on('error', (err) => logger.error({ err }, 'metrics server error'))
        logger.info({ url: metricsUrl }, 'metrics listening')
      }
      return new Promise((resolve, reject) => {
        const onError = (err: Error): void => reject(err)
        server.once('error', onError)
        server.listen(config.listen.port, config.listen.host, () => {
          server.off('error', onError)
          // Once listening, a server error (e.g. EMFILE on accept) is logged, not fatal.
          server.on('error', (err) => logger.error({ err }, 'server error'))
          const { address, port } = server.address() as AddressInfo
          const host = address.includes(':') ? `[${address}]` : address
          const url = `http://${host}:${port}`
          logger.info({ url, instances: config.instances.map((i) => `${i.name}=${i.url}`) }, 'listening')
          health.start()
          discovery.start()
          resolve(url)
        })
      })
    },
    discovered() {
      return discovery.firstRound()
    },
    reload(next, trigger) {
      return reloader.apply(next, trigger)
    },
    reloadFromSource(trigger) {
      return reloader.fromSource(trigger)
    },
    onReload(listener) {
      reloader.onReload(listener)
    },
    retired() {
      return balancer.retired()
    },
    close(drainTimeoutMs = reloader.current.server.drainTimeoutMs) {
      closing ??= drain(drainTimeoutMs)
      return closing
    },
  }
}

/** Starts `server` on `address`; resolves with its base URL (the real port when 0 was asked for). */
function listenOn(server: Server, address: { host: string; port: number }): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(address.port, address.host, () => {
      server.off('error', reject)
      resolve(urlOf(server.address() as AddressInfo))
    })
  })
}

function urlOf({ address, port }: AddressInfo): string {
  return `http://${address.includes(':') ? `[${address}]` : address}:${port}`
}
