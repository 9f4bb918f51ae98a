import t from 'tap'
import { RequestWindow } from '../../src/observability/request-window.js'

t.test('counts, errors and quantiles over the last minute', async (t) => {
  let now = 1_000_000
  const w = new RequestWindow(() => now)
  t.same(w.summary(), { requests: 0, errors: 0, requestsPerSecond: 0, p50Ms: null, p95Ms: null }, 'empty')
  for (let i = 1; i <= 100; i++) w.record(i * 10, i % 10 === 0)
  const s = w.summary()
  t.equal(s.requests, 100)
  t.equal(s.errors, 10)
  t.equal(s.requestsPerSecond, 1.67)
  // Buckets are about 19% wide: the true p50 is 500 ms and p95 950 ms.
  t.ok(s.p50Ms! >= 500 && s.p50Ms! < 500 * 1.19, `p50 ${s.p50Ms}`)
  t.ok(s.p95Ms! >= 950 && s.p95Ms! < 950 * 1.19, `p95 ${s.p95Ms}`)
  now += 30_000
  w.record(5, false)
  t.equal(w.summary().requests, 101, '30 s later everything is still in the window')
  now += 31_000
  t.same(w.summary().requests, 1, 'a minute later only the recent request is left')
  now += 60_000
  t.same(w.summary(), { requests: 0, errors: 0, requestsPerSecond: 0, p50Ms: null, p95Ms: null })
  t.equal(w.requests, 101, 'totals since start are kept')
  t.equal(w.errors, 10)
})
