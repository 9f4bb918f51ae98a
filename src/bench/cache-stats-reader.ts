/**
 * corral's cache counters, read from `GET /api/advanced-cache-stats` before and after the measured
 * phase (shape: src/cache/cache-stats.ts). A target that does not answer it with that shape (a
 * plain Ollama answers 404) is not corral, and its result has no cache rows; neither has a corral
 * whose cache is off. The counters are corral's own, so traffic from other clients during the run
 * counts too.
 */
import { CACHE_LAYERS } from '../config/cache-schema.js'
import type { CacheLayerName } from '../config/config.js'
import type { TargetClient } from './target-client.js'

export const CACHE_STATS_PATH = '/api/advanced-cache-stats'
const READ_TIMEOUT_MS = 5000

/** Hits and misses of each layer at one moment. */
export type CacheSnapshot = Record<CacheLayerName, { hits: number; misses: number }>

export interface LayerHitRate {
  hits: number
  misses: number
  /** hits / (hits + misses) during the run; null when the layer saw no lookup. */
  hit_rate: number | null
}

/** What the run did to corral's cache, per layer and overall. */
export interface CacheDelta extends LayerHitRate {
  layers: Record<CacheLayerName, LayerHitRate>
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0

/** What corral's stats said: whether its cache is on, and the counters. */
export interface CacheStatsReading {
  enabled: boolean
  layers: CacheSnapshot
}

/** The counters, or undefined when the target is not corral (or did not answer). */
export async function readCacheStats(client: TargetClient): Promise<CacheStatsReading | undefined> {
  const body = (await client.getJson(CACHE_STATS_PATH, READ_TIMEOUT_MS)) as
    | { enabled?: unknown; layers?: Record<string, { hits?: unknown; misses?: unknown } | null> | null }
    | undefined
  const layers = body?.layers
  if (layers === undefined || layers === null || typeof layers !== 'object' || typeof body!.enabled !== 'boolean') return undefined
  const snapshot = {} as CacheSnapshot
  for (const name of CACHE_LAYERS) {
    const layer = layers[name]
    if (layer === undefined || layer === null || !isCount(layer.hits) || !isCount(layer.misses)) return undefined
    snapshot[name] = { hits: layer.hits, misses: layer.misses }
  }
  return { enabled: body!.enabled, layers: snapshot }
}

const hitRate = (hits: number, misses: number): LayerHitRate => ({
  hits,
  misses,
  hit_rate: hits + misses === 0 ? null : Math.round((hits / (hits + misses)) * 1e4) / 1e4,
})

export function cacheDelta(before: CacheSnapshot, after: CacheSnapshot): CacheDelta {
  let hits = 0
  let misses = 0
  const layers = {} as Record<CacheLayerName, LayerHitRate>
  for (const name of CACHE_LAYERS) {
    const h = Math.max(0, after[name].hits - before[name].hits)
    const m = Math.max(0, after[name].misses - before[name].misses)
    hits += h
    misses += m
    layers[name] = hitRate(h, m)
  }
  return { ...hitRate(hits, misses), layers }
}
