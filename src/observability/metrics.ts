/**
 * corral's Prometheus metrics, every family created once on an injected Registry (never the
 * global one, so several corrals share a process in tests).
 *
 * Two kinds of sources:
 * - the request path (`recordRequest`, `recordAttempt`) and balancer events (attempt failures,
 *   ejections) update cell-backed counters and histograms (cell-metrics.ts) whose children are
 *   found by Map lookups on the label values (label-children.ts): once a combination was seen,
 *   recording costs a few lookups and additions, no allocation and no timer;
 * - gauges and the cache counters are read at scrape time (`collect`) from the balancer, the
 *   instances and the cache, which already keep them.
 *
 * Every label value comes from a bounded set: instance names (config), route names (constants),
 * model names discovery has seen (else `other`), status classes, cache outcomes and layers, key
 * names (config, or the first 100 JWT names, then `other`).
 */
import { Counter, Gauge, collectDefaultMetrics, type Registry } from 'prom-client'
import type { AttemptReport, Balancer } from '../balancer/balancer.js'
import type { Instance } from '../balancer/instance.js'
import type { OllamaCache } from '../cache/ollama-cache.js'
import { CACHE_LAYERS } from '../config/cache-schema.js'
import type { InstanceErrorKind } from '../shared/errors.js'
import type { Exchange } from '../http/exchange.js'
import type { AuthFailureReason, LimitName } from '../http/principal.js'
import { CellCounter, CellHistogram, type CounterCell } from './cell-metrics.js'
import { registerInstanceGauges } from './instance-gauges.js'
import {
  LATENCY_BUCKETS_SECONDS,
  authFamilies,
  reloadFamilies,
  trafficFamilies,
  type AuthFamilies,
  type ReloadFamilies,
  type TrafficFamilies,
} from './metric-families.js'
import type { LabelChildren } from './label-children.js'

export { LATENCY_BUCKETS_SECONDS, TOKENS_PER_SECOND_BUCKETS } from './metric-families.js'

/** Ollama's done_reason values; anything else counts as `other`. */
const DONE_REASONS: ReadonlySet<string> = new Set(['stop', 'length', 'load', 'unload'])
/** prom-client defaults that are gauges despite their `_total` suffix. */
const TOTAL_NAMED_GAUGES = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']
/** Indexed by `statusCode / 100`. */
const STATUS_CLASSES = ['other', '1xx', '2xx', '3xx', '4xx', '5xx']

export interface MetricsSources {
  balancer: Balancer
  /** The built-in cache, whose counters and sizes are read at scrape time; undefined: none. */
  cache: OllamaCache | undefined
  /** Also register Node's process and runtime metrics (prom-client defaults). Default true. */
  defaults?: boolean
}

export class Metrics {
  readonly registry: Registry
  /** Its `instances` are read at each use: a reload replaces them. */
  readonly #balancer: Balancer
  readonly #ejections: LabelChildren<CounterCell>
  readonly #errors: LabelChildren<CounterCell>
  readonly #traffic: TrafficFamilies
  readonly #auth: AuthFamilies
  readonly #reload: ReloadFamilies

  constructor(registry: Registry, sources: MetricsSources) {
    this.registry = registry
    const { balancer, cache } = sources
    this.#balancer = balancer
    const registers = [registry]
    if (sources.defaults !== false) {
      collectDefaultMetrics({ register: registry })
      // Gauges named `_total` break Prometheus' naming rules (promtool flags them); each is only
      // the sum of its by-type sibling (`nodejs_active_handles{type}` ...), which stays.
      for (const name of TOTAL_NAMED_GAUGES) registry.removeSingleMetric(name)
    }

    this.#traffic = trafficFamilies(registry)

    this.#errors = new CellCounter({
      name: 'corral_instance_errors_total',
      help: 'Attempts that counted as a failure against an instance, by kind (refused, reset, timeouts, busy, status_5xx, status_429, cut, ...).',
      labelNames: ['instance', 'kind'],
      registry,
    }).children()
    balancer.onAttemptFailure((instance, kind) => this.#instanceError(instance, kind))
    const queueWait = new CellHistogram({
      name: 'corral_queue_wait_seconds',
      help: 'Time a model request waited in corral\'s queue for an instance slot (0 when one was free), by priority class (interactive, bulk).',
      labelNames: ['class'],
      buckets: LATENCY_BUCKETS_SECONDS,
      registry,
    }).children()
    // One child per class, made once: observing allocates nothing.
    const waitChildren = { interactive: queueWait.get('interactive'), bulk: queueWait.get('bulk') }
    balancer.onQueueWait((priority, waitMs) => waitChildren[priority].observe(waitMs / 1000))
    this.#auth = authFamilies(registry)

    const ejections = new CellCounter({
      name: 'corral_instance_ejections_total',
      help: 'Times an instance was ejected by passive health (failures in a row).',
      labelNames: ['instance'],
      registry,
    })
    const ejectionChildren = ejections.children()
    this.#ejections = ejectionChildren
    this.trackInstances(balancer.instances)
    balancer.onHealthChange((instance, _from, to) => {
      if (to === 'ejected') ejectionChildren.get(instance.name).inc()
    })

    registerInstanceGauges(registers, balancer)

    if (cache !== undefined) this.#cacheMetrics(cache, registers)

    this.#reload = reloadFamilies(registers)
  }

  /** Creates the per-instance counters of `instances` at 0 (at start, and for instances a reload added). */
  trackInstances(instances: readonly Instance[]): void {
    for (const instance of instances) this.#ejections.get(instance.name)
  }

  /** Records one reload attempt (`at`: ms since the epoch). Not on the request path. */
  recordReload(result: 'ok' | 'invalid', at: number = Date.now()): void {
    this.#reload.reloads.labels(result).inc()
    this.#reload.lastReloadOk.set(result === 'ok' ? 1 : 0)
    if (result === 'ok') this.#reload.lastReloadSuccess.set(at / 1000)
  }

  /** Records one answered client request (called once per request, when it ends). */
  recordRequest(ex: Exchange, endedAt: number): void {
    const route = ex.route.name
    const cache = ex.cache ?? 'none'
    // A client that left before any answer has none: it counts as 4xx, like nginx's 499.
    const code = ex.clientGone && !ex.res.headersSent ? 499 : ex.res.statusCode
    const status = STATUS_CLASSES[Math.floor(code / 100)] ?? 'other'
    const instance = ex.instance?.name ?? 'none'
    this.#traffic.requests.get(route, this.#modelLabel(ex.modelKey), instance, status, cache, ex.keyLabel).inc()
    this.#traffic.duration.get(route, cache).observe((endedAt - ex.startedAt) / 1000)
    if (ex.firstByteAt > 0) this.#traffic.ttfb.get(route, cache).observe((ex.firstByteAt - ex.startedAt) / 1000)
  }

  /** Records Ollama's counts from an attempt's final chunk (generations answered 200). */
  recordAttempt(ex: Exchange, instance: Instance, report: AttemptReport & { promptEvalCount: number; doneReason: string | undefined }): void {
    if (report.evalCount === 0 && report.promptEvalCount === 0 && report.doneReason === undefined) return
    const model = this.#modelLabel(ex.modelKey)
    if (report.promptEvalCount > 0) this.#traffic.tokens.get(model, 'prompt').inc(report.promptEvalCount)
    if (report.evalCount > 0) {
      this.#traffic.tokens.get(model, 'completion').inc(report.evalCount)
      if (report.evalMs > 0) this.#traffic.tokensPerSecond.get(model, instance.name).observe(report.evalCount / (report.evalMs / 1000))
    }
    if (report.doneReason !== undefined) {
      this.#traffic.doneReasons.get(model, DONE_REASONS.has(report.doneReason) ? report.doneReason : 'other').inc()
    }
  }

  /** Counts a request refused by auth (401 or 403). */
  recordAuthFailure(reason: AuthFailureReason): void {
    this.#auth.authFailures.get(reason).inc()
  }

  /** Counts a request refused by a per-key limit (429); `keyLabel` is bounded (config names, capped JWT names). */
  recordRateLimited(keyLabel: string, limit: LimitName): void {
    this.#auth.rateLimited.get(keyLabel, limit).inc()
  }

  /** The exposition text and its content type, for `GET /metrics`. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() }
  }

  #instanceError(instance: Instance, kind: InstanceErrorKind): void {
    this.#errors.get(instance.name, kind).inc()
  }

  /** A model's label: its canonical name if discovery saw it on some instance, else `other` (`none`: no model). */
  #modelLabel(modelKey: string | undefined): string {
    if (modelKey === undefined) return 'none'
    const { instances } = this.#balancer
    for (let i = 0; i < instances.length; i++) if (instances[i]!.models?.has(modelKey) === true) return modelKey
    return 'other'
  }

  /** Cache counters and sizes, read from the cache's report at scrape time (nothing on the request path). */
  #cacheMetrics(cache: OllamaCache, registers: Registry[]): void {
    // Counters follow the cache's own monotonic counts: each scrape adds what was counted since the last.
    const seen = new Map<string, number>()
    const advance = (child: { inc(value: number): void }, key: string, value: number): void => {
      const delta = value - (seen.get(key) ?? 0)
      if (delta > 0) child.inc(delta)
      seen.set(key, value)
    }
    new Counter({
      name: 'corral_cache_requests_total',
      help: 'Cache lookups by layer (embedding, chunk, inference) and result (hit, miss); a batch of embeddings counts once.',
      labelNames: ['layer', 'result'],
      registers,
      collect() {
        const report = cache.report()
        for (const layer of CACHE_LAYERS) {
          advance(this.labels(layer, 'hit'), `${layer}:hit`, report.layers[layer].hits)
          advance(this.labels(layer, 'miss'), `${layer}:miss`, report.layers[layer].misses)
        }
      },
    })
    new Counter({
      name: 'corral_cache_writes_skipped_total',
      help: 'Entries not stored, by layer and reason: overload (corral was saturated and answered without storing) or store (the store refused or failed the write).',
      labelNames: ['layer', 'reason'],
      registers,
      collect() {
        const report = cache.report()
        for (const layer of CACHE_LAYERS) {
          advance(this.labels(layer, 'overload'), `${layer}:overload`, report.layers[layer].skipped.overload)
          advance(this.labels(layer, 'store'), `${layer}:store`, report.layers[layer].skipped.store)
        }
      },
    })
    new Counter({
      name: 'corral_cache_coalesced_total',
      help: 'Requests answered by following an identical request already in flight (single flight).',
      registers,
      collect() {
        advance(this, 'coalesced', cache.report().coalesced)
      },
    })
    new Counter({
      name: 'corral_cache_bypassed_total',
      help: 'Requests of cacheable routes the cache did not look up (policy, Cache-Control, load requests).',
      registers,
      collect() {
        advance(this, 'bypassed', cache.report().bypassed)
      },
    })
    const store = cache.store
    new Gauge({
      name: 'corral_cache_entries',
      help: 'Entries held in process memory per layer (the memory store, or the memory tier in front of Redis).',
      labelNames: ['layer'],
      registers,
      collect() {
        for (const layer of CACHE_LAYERS) this.labels(layer).set(store.usage(layer).entries)
      },
    })
    new Gauge({
      name: 'corral_cache_bytes',
      help: 'Bytes of the entries held in process memory per layer.',
      labelNames: ['layer'],
      registers,
      collect() {
        for (const layer of CACHE_LAYERS) this.labels(layer).set(store.usage(layer).bytes)
      },
    })
    // Which store holds the cache, so dashboards can tell "no Redis configured" from "no data".
    const storeName = store.health() !== undefined ? 'redis' : 'memory'
    new Gauge({
      name: 'corral_cache_store_info',
      help: 'Always 1; the store label says where the cache lives: memory (no Redis configured) or redis.',
      labelNames: ['store'],
      registers,
    })
      .labels(storeName)
      .set(1)
    if (store.health() !== undefined) {
      new Gauge({
        name: 'corral_redis_up',
        help: '1 when Redis answers, 0 while it is connecting or down (the cache then passes requests through).',
        registers,
        collect() {
          this.set(store.health()?.state === 'up' ? 1 : 0)
        },
      })
    }
  }
}
