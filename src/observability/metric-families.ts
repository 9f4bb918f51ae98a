/**
 * The metric families corral records on the request path and on events, grouped by what they
 * describe, each created once on the registry it is given. Metrics (metrics.ts) holds the groups
 * and records into them.
 */
import { Counter, Gauge, type Registry } from 'prom-client'
import { CellCounter, CellHistogram, type CounterCell, type HistogramCell } from './cell-metrics.js'
import type { LabelChildren } from './label-children.js'

/** Request latencies span a cached answer (about 1 ms) to a long generation (10 min). */
export const LATENCY_BUCKETS_SECONDS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600,
]
/** Generation speed, from a small CPU model to a fast GPU. */
export const TOKENS_PER_SECOND_BUCKETS = [1, 2, 5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 300, 500, 1000]

/** What clients asked and what the instances produced for them. */
export interface TrafficFamilies {
  readonly requests: LabelChildren<CounterCell>
  readonly duration: LabelChildren<HistogramCell>
  readonly ttfb: LabelChildren<HistogramCell>
  readonly tokens: LabelChildren<CounterCell>
  readonly tokensPerSecond: LabelChildren<HistogramCell>
  readonly doneReasons: LabelChildren<CounterCell>
}

export function trafficFamilies(registry: Registry): TrafficFamilies {
  return {
    requests: new CellCounter({
      name: 'corral_requests_total',
      help: 'Client requests answered, by route, model (discovered names only, else other), instance (none: not forwarded), status class, cache outcome and API key name (anonymous: auth off).',
      labelNames: ['route', 'model', 'instance', 'status_class', 'cache', 'key'],
      registry,
    }).children(),
    duration: new CellHistogram({
      name: 'corral_request_duration_seconds',
      help: 'Time from the request arriving to the response ending.',
      labelNames: ['route', 'cache'],
      buckets: LATENCY_BUCKETS_SECONDS,
      registry,
    }).children(),
    ttfb: new CellHistogram({
      name: 'corral_time_to_first_byte_seconds',
      help: 'Time from the request arriving to the response headers going to the client.',
      labelNames: ['route', 'cache'],
      buckets: LATENCY_BUCKETS_SECONDS,
      registry,
    }).children(),
    tokens: new CellCounter({
      name: 'corral_tokens_total',
      help: 'Tokens instances processed, from Ollama\'s final-chunk counts: prompt (prompt_eval_count) and completion (eval_count).',
      labelNames: ['model', 'kind'],
      registry,
    }).children(),
    tokensPerSecond: new CellHistogram({
      name: 'corral_tokens_per_second',
      help: 'Generation speed of each answer: eval_count / eval_duration.',
      labelNames: ['model', 'instance'],
      buckets: TOKENS_PER_SECOND_BUCKETS,
      registry,
    }).children(),
    doneReasons: new CellCounter({
      name: 'corral_done_reason_total',
      help: 'Generations that ended, by Ollama\'s done_reason (stop, length, load, unload, other).',
      labelNames: ['model', 'reason'],
      registry,
    }).children(),
  }
}

/** Requests refused by auth and by per-key limits. */
export interface AuthFamilies {
  readonly authFailures: LabelChildren<CounterCell>
  readonly rateLimited: LabelChildren<CounterCell>
}

export function authFamilies(registry: Registry): AuthFamilies {
  return {
    authFailures: new CellCounter({
      name: 'corral_auth_failures_total',
      help: 'Requests refused by auth: missing key, invalid key or token, expired token, forbidden (a plain key on an admin route).',
      labelNames: ['reason'],
      registry,
    }).children(),
    rateLimited: new CellCounter({
      name: 'corral_rate_limited_total',
      help: 'Requests refused with 429 by a per-key limit (rpm or concurrency), by key name.',
      labelNames: ['key', 'limit'],
      registry,
    }).children(),
  }
}

/** Configuration reloads: counted by result, the last one's outcome and time. */
export interface ReloadFamilies {
  readonly reloads: Counter
  readonly lastReloadOk: Gauge
  readonly lastReloadSuccess: Gauge
}

export function reloadFamilies(registers: Registry[]): ReloadFamilies {
  const reloads = new Counter({
    name: 'corral_config_reloads_total',
    help: 'Configuration reloads (SIGHUP, --watch, POST /api/admin/reload) by result: ok (applied) or invalid (rejected, the running one kept).',
    labelNames: ['result'],
    registers,
  })
  reloads.labels('ok')
  reloads.labels('invalid')
  const lastReloadOk = new Gauge({
    name: 'corral_config_last_reload_successful',
    help: '1 when the last reload was applied (or none was tried), 0 when it was rejected.',
    registers,
  })
  lastReloadOk.set(1)
  const lastReloadSuccess = new Gauge({
    name: 'corral_config_last_reload_success_timestamp_seconds',
    help: 'When the running configuration was applied (start or the last successful reload), Unix time in seconds.',
    registers,
  })
  lastReloadSuccess.set(Date.now() / 1000)
  return { reloads, lastReloadOk, lastReloadSuccess }
}
