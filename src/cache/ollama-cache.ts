/**
 * The cache on the request path (the `RequestCache` the proxy calls): looks a request up, replays
 * hits in the shape asked for, coalesces identical requests in flight, and captures misses to
 * store them after the response is done. Generations are cached whole (generation-cache.ts),
 * embeddings per input item (embedding-cache.ts); both store through one writer (entry-writer.ts).
 */
import type { Logger } from 'pino'
import type { CacheConfig, CacheLayerName } from '../config/config.js'
import type { Exchange } from '../http/exchange.js'
import { KeySpace } from './cache-key.js'
import { canonicalModel } from '../shared/model-name.js'
import { planFor } from './cache-policy.js'
import { CacheContext } from './cache-context.js'
import { CacheStats, type CacheStatsReport } from './cache-stats.js'
import type { CacheStore } from './cache-store.js'
import { EmbeddingCache } from './embedding-cache.js'
import { EntryWriter } from './entry-writer.js'
import { GenerationCache } from './generation-cache.js'
import type { Forward, RequestCache } from './request-cache.js'
import { ReplicaFlight } from './replica-flight.js'
import { RenderedVectors } from './rendered-vectors.js'

export interface OllamaCacheDeps {
  config: CacheConfig
  store: CacheStore
  /** Prefix of every stored key (`redis.key_prefix`, or `corral:` for the memory store). */
  keyPrefix: string
  /** The digest of a model from discovery (keys include it), or undefined while unknown. */
  digestOf: (model: string) => string | undefined
  logger: Logger
  /**
   * Single flight across replicas (`redis.single_flight`): the lock TTL in ms, or undefined when
   * off. Needs `cache.single_flight`.
   */
  replicaLockTtlMs?: number | undefined
  /** Bytes of process memory for the rendered text of hot vectors (0: render every hit). Default 0. */
  renderedBytes?: number
}

export class OllamaCache implements RequestCache {
  readonly #ctx: CacheContext
  readonly #stats = new CacheStats()
  readonly #writer: EntryWriter
  readonly #generations: GenerationCache
  readonly #embeddings: EmbeddingCache
  readonly #rendered: RenderedVectors
  readonly #digestOf: (model: string) => string | undefined

  constructor(deps: OllamaCacheDeps) {
    this.#writer = new EntryWriter(() => this.#ctx.config, deps.store, this.#stats, deps.logger)
    const keys = new KeySpace(deps.keyPrefix)
    this.#ctx = new CacheContext(deps.config, deps.store, keys, this.#stats, this.#writer)
    this.#digestOf = deps.digestOf
    const replicas = deps.replicaLockTtlMs === undefined ? undefined : new ReplicaFlight(deps.store, keys, deps.replicaLockTtlMs)
    this.#rendered = new RenderedVectors(deps.renderedBytes ?? 0)
    this.#generations = new GenerationCache(this.#ctx, replicas)
    this.#embeddings = new EmbeddingCache(this.#ctx, this.#rendered)
  }

  /**
   * New settings from a reload: layers, TTLs, policy, single flight, the response header and
   * the entry size limit apply to requests from now on (entries already stored keep their TTL).
   */
  reconfigure(config: CacheConfig): void {
    this.#ctx.config = config
  }

  /** How long a new entry of `layer` is kept, in ms. */
  ttlMs(layer: CacheLayerName): number {
    return this.#ctx.config.layers[layer].ttlMs
  }

  get store(): CacheStore {
    return this.#ctx.store
  }

  get keys(): KeySpace {
    return this.#ctx.keys
  }

  async handle(ex: Exchange, forward: Forward): Promise<void> {
    const plan = planFor(this.#ctx.config, ex.route.name, ex.req.method, ex.req.headers, ex.json, ex.model)
    if (plan === undefined) return forward(ex)
    if (plan.kind === 'bypass') {
      this.#stats.bypassed++
      this.#ctx.mark(ex, 'bypass')
      return forward(ex)
    }
    const model = ex.modelKey ?? canonicalModel(ex.model!)
    const digest = this.#digestOf(model)
    // Until discovery has seen the model, corral cannot tell a re-pulled model from the one an
    // entry was made with: no lookup, no store (moments after start, or a model no instance has).
    if (digest === undefined) {
      this.#stats.bypassed++
      this.#ctx.mark(ex, 'bypass')
      return forward(ex)
    }
    if (plan.kind === 'answer') return this.#generations.handle(ex, forward, plan, model, digest)
    return this.#embeddings.handle(ex, forward, plan, model, digest)
  }

  /** Resolves when the store is up (Redis connected; at once in memory); rejects after `timeoutMs`. */
  whenStoreUp(timeoutMs = 5000): Promise<void> {
    return this.#ctx.store.whenUp?.(timeoutMs) ?? Promise.resolve()
  }

  /** The stats report (`GET /api/advanced-cache-stats`). */
  report(): CacheStatsReport {
    return this.#stats.report(this.#ctx.config, this.#ctx.store)
  }

  /** Stores every captured answer now and resolves when the store has acknowledged every write (tests, shutdown). */
  settle(): Promise<void> {
    return this.#writer.settle()
  }

  async close(): Promise<void> {
    await this.settle()
    this.#writer.close()
    this.#rendered.clear()
    await this.#ctx.store.close()
  }
}
