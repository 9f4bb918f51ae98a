/** Pure parts of a result: SLO checks, cache hit rates from two snapshots, ratios, error kinds. */
import t from 'tap'
import type { RunResult } from '../../src/bench/bench-result.js'
import { cacheDelta, type CacheSnapshot } from '../../src/bench/cache-stats-reader.js'
import { compareRatios } from '../../src/bench/compare-table.js'
import { transportErrorKind } from '../../src/bench/error-kind.js'
import { checkSlo, describeMissed } from '../../src/bench/slo-check.js'

const summary = (p95: number) => ({ count: 10, min: 1, mean: 5, p50: 4, p95, p99: p95 + 1, max: p95 + 2 })

function result(over: Partial<RunResult> = {}): RunResult {
  return {
    target: 'http://127.0.0.1:1', corral: false, workload: 'rag', mode: 'closed', users: 4, rate_per_s: null, stream: false,
    seed: 1, zipf: null, interrupted: false, elapsed_s: 2, requests: 100, ok: 98, errors: 2, cancelled: 0, error_rate: 0.02,
    errors_by_kind: { http_503: 2 }, throughput_rps: 49, in_flight: { mean: 4, peak: 4 }, latency_ms: summary(120), ttft_ms: null,
    calls: {}, warmup_requests: 0, cache: null, bulk: null, ...over,
  }
}

t.test('SLO: each flag is one check, any miss fails the gate', async (t) => {
  const none = checkSlo({ p95MaxMs: undefined, minRps: undefined, maxErrorRate: undefined }, result())
  t.same(none, { passed: true, checks: [] })
  const pass = checkSlo({ p95MaxMs: 130, minRps: 30, maxErrorRate: 0.05 }, result())
  t.equal(pass.passed, true)
  t.equal(pass.checks.length, 3)
  const slow = checkSlo({ p95MaxMs: 100, minRps: 30, maxErrorRate: 0.05 }, result())
  t.equal(slow.passed, false)
  t.same(slow.checks.filter((c) => !c.passed).map((c) => c.name), ['p95_ms'])
  t.equal(describeMissed(slow), 'p95 <= 100 ms: 120 ms')
  const few = checkSlo({ p95MaxMs: undefined, minRps: 50, maxErrorRate: 0.01 }, result())
  t.equal(describeMissed(few), 'throughput >= 50 req/s: 49 req/s; error rate <= 1 %: 2 %')
})

t.test('SLO: no successful request misses a p95 check; no request at all misses an error-rate check', async (t) => {
  const failed = result({ ok: 0, errors: 5, requests: 5, error_rate: 1, latency_ms: summary(0) })
  t.equal(checkSlo({ p95MaxMs: 100, minRps: undefined, maxErrorRate: undefined }, failed).passed, false)
  const nothing = result({ ok: 0, errors: 0, requests: 0, error_rate: 0 })
  const r = checkSlo({ p95MaxMs: undefined, minRps: undefined, maxErrorRate: 0.5 }, nothing)
  t.equal(r.passed, false)
  t.equal(r.checks[0]!.actual, null)
})

t.test('cache hit rates: the difference of two snapshots, per layer and overall', async (t) => {
  const before: CacheSnapshot = { embedding: { hits: 10, misses: 5 }, chunk: { hits: 0, misses: 0 }, inference: { hits: 1, misses: 1 } }
  const after: CacheSnapshot = { embedding: { hits: 40, misses: 15 }, chunk: { hits: 0, misses: 0 }, inference: { hits: 21, misses: 21 } }
  const d = cacheDelta(before, after)
  t.same(d.layers.embedding, { hits: 30, misses: 10, hit_rate: 0.75 })
  t.same(d.layers.chunk, { hits: 0, misses: 0, hit_rate: null })
  t.same(d.layers.inference, { hits: 20, misses: 20, hit_rate: 0.5 })
  t.same({ hits: d.hits, misses: d.misses, hit_rate: d.hit_rate }, { hits: 50, misses: 30, hit_rate: 0.625 })
})

t.test('ratios are second / first, null where the first is 0 or missing', async (t) => {
  const a = result({ throughput_rps: 50, error_rate: 0 })
  const b = result({ throughput_rps: 100, latency_ms: summary(60), error_rate: 0.1 })
  const r = compareRatios(a, b)
  t.equal(r.throughput_rps, 2)
  t.equal(r.latency_p95, 0.5)
  t.equal(r.error_rate, null)
  t.equal(r.ttft_p50, null)
})

t.test('transport errors are grouped by system code, timeouts together', async (t) => {
  t.equal(transportErrorKind(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), 'ECONNREFUSED')
  t.equal(transportErrorKind(Object.assign(new Error('x'), { code: 'UND_ERR_HEADERS_TIMEOUT' })), 'timeout')
  t.equal(transportErrorKind(Object.assign(new Error('x'), { code: 'UND_ERR_SOCKET', cause: { code: 'ECONNRESET' } })), 'ECONNRESET')
  t.equal(transportErrorKind(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })), 'socket_closed')
  t.equal(transportErrorKind(Object.assign(new Error('wrapped'), { cause: Object.assign(new Error('x'), { code: 'ENOTFOUND' }) })), 'ENOTFOUND')
  t.equal(transportErrorKind(new Error('mystery')), 'network_error')
})

t.test('a bulk job beside the users is printed apart', async (t) => {
  const { renderResult } = await import('../../src/bench/result-table.js')
  const bulk = { clients: 12, batch_size: 32, batches: 400, errors: 0, batches_per_second: 20.5, latency_ms: summary(300) }
  t.match(renderResult(result({ bulk })), /bulk job +12 clients, batches of 32: 400 batches \(20\.50\/s\), 0 errors/)
  t.notMatch(renderResult(result()), /bulk job/)
})
