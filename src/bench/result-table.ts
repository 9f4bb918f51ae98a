/**
 * One run's result for people: what ran, counts, throughput, concurrency, a latency table (turns,
 * time to first token, each call) and, when the target is corral, the cache's hit rate per layer.
 */
import type { RunResult } from './bench-result.js'
import type { LatencySummary } from './latency-histogram.js'
import { textTable } from './text-table.js'

export const ms = (n: number): string => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2))
const users = (n: number): string => `${n} user${n === 1 ? '' : 's'}`
export const percent = (rate: number | null): string => (rate === null ? '-' : `${(rate * 100).toFixed(1)} %`)

/** `rag, closed loop, 8 users, zipf s=1.1, streamed, seed 42` */
export function describeRun(r: RunResult): string {
  const load = r.mode === 'closed' ? `closed loop, ${users(r.users!)}` : `open loop, ${r.rate_per_s} req/s Poisson arrivals`
  const skew = r.zipf === null ? 'prompts in order' : `zipf s=${r.zipf}`
  return `${r.workload}, ${load}, ${skew}, ${r.stream ? 'streamed' : 'not streamed'}, seed ${r.seed}`
}

export function describeErrors(r: RunResult): string {
  const kinds = Object.entries(r.errors_by_kind)
  return kinds.length === 0 ? '' : ` (${kinds.map(([k, n]) => `${k}: ${n}`).join(', ')})`
}

/** The latency series of a result, named: turn, ttft, then each call. */
export function latencySeries(r: RunResult): Array<[string, LatencySummary]> {
  const series: Array<[string, LatencySummary]> = [[r.workload === 'rag' ? 'turn' : 'request', r.latency_ms]]
  if (r.ttft_ms !== null) series.push(['time to first token', r.ttft_ms])
  // A single-call workload's call is the turn itself: listing it again says nothing.
  if (r.workload === 'rag') for (const [path, call] of Object.entries(r.calls)) series.push([`  ${path}`, call.latency_ms])
  return series
}

export function renderResult(r: RunResult): string {
  const lines: string[] = []
  const facts: Array<[string, string]> = [
    ['target', `${r.target}${r.corral ? ' (corral)' : ''}`],
    ['workload', describeRun(r)],
    ['elapsed', `${r.elapsed_s.toFixed(2)} s${r.interrupted ? ' (interrupted: partial result)' : ''}`],
    ['requests', `${r.requests} (${r.ok} ok, ${r.errors} errors${r.cancelled > 0 ? `, ${r.cancelled} cancelled` : ''})${r.warmup_requests > 0 ? ` after ${r.warmup_requests} warm-up` : ''}`],
    ['errors', `${r.errors}${describeErrors(r)}, error rate ${percent(r.error_rate)}`],
    ['throughput', `${r.throughput_rps.toFixed(2)} req/s`],
    ['concurrency', `${r.users !== null ? `${users(r.users)}, ` : ''}${r.in_flight.mean.toFixed(1)} in flight on average, peak ${r.in_flight.peak}`],
  ]
  for (const [k, v] of facts) lines.push(`${k.padEnd(13)}${v}`)
  lines.push('')
  const latency: string[][] = [['latency (ms)', 'p50', 'p95', 'p99', 'mean', 'max', 'count']]
  for (const [name, s] of latencySeries(r)) {
    latency.push(s.count === 0 ? [name, '-', '-', '-', '-', '-', '0'] : [name, ms(s.p50), ms(s.p95), ms(s.p99), ms(s.mean), ms(s.max), String(s.count)])
  }
  lines.push(textTable(latency))
  if (r.bulk !== null) {
    const b = r.bulk
    lines.push('', `bulk job     ${b.clients} clients, batches of ${b.batch_size}: ${b.batches} batches (${b.batches_per_second.toFixed(2)}/s), ${b.errors} errors, batch p50 ${ms(b.latency_ms.p50)} ms, p95 ${ms(b.latency_ms.p95)} ms`)
  }
  if (r.corral && r.cache === null) lines.push('', 'corral cache  off')
  if (r.cache !== null) {
    lines.push('')
    const cache: string[][] = [['corral cache', 'hits', 'misses', 'hit rate']]
    for (const [layer, c] of Object.entries(r.cache.layers)) cache.push([layer, String(c.hits), String(c.misses), percent(c.hit_rate)])
    cache.push(['all layers', String(r.cache.hits), String(r.cache.misses), percent(r.cache.hit_rate)])
    lines.push(textTable(cache))
  }
  return lines.join('\n') + '\n'
}
