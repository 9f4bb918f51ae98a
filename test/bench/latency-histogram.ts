/** Percentile math of the latency recorder: nearest-rank percentiles within 0.5 %, exact extremes. */
import t from 'tap'
import { LatencyHistogram } from '../../src/bench/latency-histogram.js'
import { Prng } from '../../src/bench/prng.js'

/** Exact nearest-rank percentile of sorted values. */
const exact = (sorted: number[], p: number): number => sorted[Math.max(1, Math.ceil((p / 100) * sorted.length)) - 1]!

t.test('nothing recorded: zeros', async (t) => {
  t.same(new LatencyHistogram().summary(), { count: 0, min: 0, mean: 0, p50: 0, p95: 0, p99: 0, max: 0 })
})

t.test('one value, or a constant series, is reported exactly', async (t) => {
  const one = new LatencyHistogram()
  one.record(12.345)
  t.same(one.summary(), { count: 1, min: 12.345, mean: 12.345, p50: 12.345, p95: 12.345, p99: 12.345, max: 12.345 })
  const flat = new LatencyHistogram()
  for (let i = 0; i < 1000; i++) flat.record(80)
  t.equal(flat.percentile(50), 80)
  t.equal(flat.percentile(99), 80)
})

t.test('nearest rank on a small series: 1..100 ms', async (t) => {
  const h = new LatencyHistogram()
  for (let i = 100; i >= 1; i--) h.record(i)
  for (const p of [1, 50, 95, 99, 100]) {
    t.ok(Math.abs(h.percentile(p) - p) / p <= 0.005, `p${p} = ${h.percentile(p)}`)
  }
  const s = h.summary()
  t.equal(s.count, 100)
  t.equal(s.min, 1)
  t.equal(s.max, 100)
  t.equal(s.mean, 50.5)
})

t.test('random latencies over five decades: every percentile within 0.5 % of the exact one', async (t) => {
  const rng = new Prng(11)
  const h = new LatencyHistogram()
  const values: number[] = []
  for (let i = 0; i < 20_000; i++) {
    // Log-uniform from 0.01 ms to 1000 ms, with a heavy tail like real latencies.
    const v = Math.pow(10, -2 + 5 * rng.next())
    values.push(v)
    h.record(v)
  }
  values.sort((a, b) => a - b)
  for (const p of [10, 50, 90, 95, 99, 99.9]) {
    const want = exact(values, p)
    const got = h.percentile(p)
    t.ok(Math.abs(got - want) / want <= 0.005, `p${p}: ${got} vs exact ${want}`)
  }
})

t.test('negative and non-numbers are ignored; sub-microsecond values count', async (t) => {
  const h = new LatencyHistogram()
  h.record(-1)
  h.record(Number.NaN)
  h.record(0)
  h.record(0.0001)
  t.equal(h.count, 2)
  t.equal(h.summary().max, 0)
})
