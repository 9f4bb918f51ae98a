import type { CacheConfig, CacheLayerName } from '../config/config.js'
import { CACHE_LAYERS } from '../config/cache-schema.js'
import type { CacheStore } from './cache-store.js'

/** Counters of one layer. */
interface LayerCounters {
  hits: number
  misses: number
  writes: number
  skippedOverload: number
  skippedStore: number
}

/**
 * Why an entry was not stored: `overload`, the capture queue was full (corral was saturated and
 * answered without storing); `store`, the store refused or failed the write (Redis down or slow).
 */
export type SkipReason = 'overload' | 'store'

/** One layer in `GET /api/advanced-cache-stats`. */
export interface LayerStats {
  hits: number
  misses: number
  /** hits / (hits + misses), 0 when there were none. */
  hit_rate: number
  /** Entries stored. */
  writes: number
  /** Entries not stored: the capture queue was full (corral saturated) or the store failed the write. */
  skipped: { overload: number; store: number }
  /** Entries dropped from process memory to make room. */
  evictions: number
  /** Entries in process memory (the memory store, or the memory tier in front of Redis). */
  entries: number
  /** Bytes of those entries. */
  bytes: number
  ttl_seconds: number
}

/** The body of `GET /api/advanced-cache-stats`. */
export interface CacheStatsReport {
  enabled: boolean
  store: 'memory' | 'redis'
  hits: number
  misses: number
  hit_rate: number
  /** Requests answered by following an identical request in flight. */
  coalesced: number
  /** Requests of cacheable routes that were not cached (policy, Cache-Control, load requests). */
  bypassed: number
  /** Entries not stored, all layers (see each layer's `skipped`). */
  skipped_writes: number
  layers: Record<CacheLayerName, LayerStats>
  redis: { state: 'connecting' | 'up' | 'down'; errors: number; state_changes: number } | null
}

const rate = (hits: number, misses: number): number => (hits + misses === 0 ? 0 : Math.round((hits / (hits + misses)) * 1e4) / 1e4)

/** Hit, miss and write counters per layer; requests count once (a batch of embeddings is one request). */
export class CacheStats {
  readonly #layers: Record<CacheLayerName, LayerCounters> = {
    embedding: { hits: 0, misses: 0, writes: 0, skippedOverload: 0, skippedStore: 0 },
    chunk: { hits: 0, misses: 0, writes: 0, skippedOverload: 0, skippedStore: 0 },
    inference: { hits: 0, misses: 0, writes: 0, skippedOverload: 0, skippedStore: 0 },
  }
  coalesced = 0
  bypassed = 0

  hit(layer: CacheLayerName): void {
    this.#layers[layer].hits++
  }

  miss(layer: CacheLayerName): void {
    this.#layers[layer].misses++
  }

  wrote(layer: CacheLayerName): void {
    this.#layers[layer].writes++
  }

  /** `count` entries of `layer` were not stored. */
  skipped(layer: CacheLayerName, reason: SkipReason, count: number): void {
    if (reason === 'overload') this.#layers[layer].skippedOverload += count
    else this.#layers[layer].skippedStore += count
  }

  report(config: CacheConfig, store: CacheStore): CacheStatsReport {
    let hits = 0
    let misses = 0
    let skipped = 0
    const layers = {} as Record<CacheLayerName, LayerStats>
    for (const name of CACHE_LAYERS) {
      const c = this.#layers[name]
      const usage = store.usage(name)
      hits += c.hits
      misses += c.misses
      skipped += c.skippedOverload + c.skippedStore
      layers[name] = {
        hits: c.hits,
        misses: c.misses,
        hit_rate: rate(c.hits, c.misses),
        writes: c.writes,
        skipped: { overload: c.skippedOverload, store: c.skippedStore },
        evictions: usage.evictions,
        entries: usage.entries,
        bytes: usage.bytes,
        ttl_seconds: Math.round(config.layers[name].ttlMs / 1000),
      }
    }
    const health = store.health()
    return {
      enabled: config.enabled,
      store: store.kind,
      hits,
      misses,
      hit_rate: rate(hits, misses),
      coalesced: this.coalesced,
      bypassed: this.bypassed,
      skipped_writes: skipped,
      layers,
      redis: health === undefined ? null : { state: health.state, errors: health.errors, state_changes: health.stateChanges },
    }
  }
}
