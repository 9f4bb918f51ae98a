/**
 * `GET /api/load-balancer-stats`: what the balancer knows, per instance and overall, as JSON.
 * Field names are part of corral's interface (docs/metrics.md, "Stats").
 */
import type { Balancer } from '../balancer/balancer.js'
import type { RequestWindow } from './request-window.js'
import type { PriorityClass } from '../config/priority-class.js'

const round = (v: number): number => Math.round(v * 10) / 10

export function loadBalancerStats(balancer: Balancer, window: RequestWindow, now: number = Date.now()): unknown {
  const instances = balancer.instances.map((instance) => {
    const gen = instance.timing.generation
    const emb = instance.timing.embedding
    const score = balancer.scoreOf(instance)
    return {
      name: instance.name,
      url: instance.url,
      state: instance.health.state(now),
      weight: instance.weight,
      weight_factor: round(instance.health.weightFactor(now)),
      max_concurrency: instance.maxConcurrency ?? null,
      learned_concurrency: { generation: instance.slots('generation'), embedding: instance.slots('embedding') },
      in_flight: instance.inFlight,
      queued: balancer.queuedFor(instance),
      score: score === undefined ? null : round(score),
      ewma_ttfb_ms: {
        generation: gen.ttfbMs.known ? round(gen.ttfbMs.value) : null,
        embedding: emb.ttfbMs.known ? round(emb.ttfbMs.value) : null,
      },
      ewma_ms_per_token: gen.msPerToken.known ? round(gen.msPerToken.value) : null,
      failure_penalty_ms: round(instance.penalty.valueAt(now)),
      requests: instance.requests,
      errors: instance.failures,
      error_rate: instance.requests === 0 ? 0 : Math.round((instance.failures / instance.requests) * 1e4) / 1e4,
      ejections: instance.ejections,
      state_changes: instance.stateChanges,
      ejected_until: instance.health.ejectedUntil === 0 ? null : new Date(instance.health.ejectedUntil).toISOString(),
      last_check: instance.health.lastCheckAt === 0 ? null : new Date(instance.health.lastCheckAt).toISOString(),
      last_check_ok: instance.health.lastCheckOk ?? null,
      last_error: instance.lastError ?? null,
      models: instance.models === undefined ? null : [...instance.models.keys()].sort(),
      loaded_models: instance.loaded === undefined ? null : [...instance.loaded].sort(),
    }
  })
  const last = window.summary()
  return {
    strategy: balancer.policy.name,
    requests: window.requests,
    errors: window.errors,
    requests_1m: last.requests,
    errors_1m: last.errors,
    requests_per_second_1m: last.requestsPerSecond,
    p50_ms_1m: last.p50Ms,
    p95_ms_1m: last.p95Ms,
    queue_depth: balancer.queueDepth,
    queue: queueStats(balancer),
    expected_tokens: Math.round(balancer.expectedTokens),
    instances,
  }
}

/** Queued now and waits since start per priority class, and who is queued (per key and class). */
function queueStats(balancer: Balancer): unknown {
  const byClass = (priority: PriorityClass): unknown => {
    const w = balancer.waits.byClass[priority]
    return {
      queued: balancer.queuedOf(priority),
      served: w.served,
      waited: w.queued,
      wait_ms_avg: w.queued === 0 ? 0 : round(w.waitMsTotal / w.queued),
      wait_ms_max: round(w.waitMsMax),
    }
  }
  const keys: Record<string, Record<PriorityClass, number>> = {}
  for (const [tenant, counts] of balancer.queuedByTenant()) keys[tenant === '' ? 'anonymous' : tenant] = counts
  return { interactive: byClass('interactive'), bulk: byClass('bulk'), queued_by_key: keys }
}
