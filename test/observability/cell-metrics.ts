import t from 'tap'
import { Counter, Histogram, Registry } from 'prom-client'
import { CellCounter, CellHistogram } from '../../src/observability/cell-metrics.js'

/** The exposition with the HELP/TYPE lines and sample lines of one registry, sorted (order is not part of the format's meaning). */
const lines = async (registry: Registry): Promise<string[]> => (await registry.metrics()).split('\n').filter((l) => l !== '').sort()

t.test('cells render exactly as prom-client renders the same observations', async (t) => {
  const buckets = [0.001, 0.01, 0.1, 1, 10]
  const observations: [string, string, number][] = [
    ['generate', 'miss', 0.0005], ['generate', 'miss', 0.01], ['generate', 'miss', 3], ['embed', 'hit', 0.002], ['embed', 'hit', 60],
  ]
  const ours = new Registry()
  const theirs = new Registry()
  const counter = new CellCounter({ name: 'x_requests_total', help: 'requests', labelNames: ['route', 'cache'], registry: ours })
  const histogram = new CellHistogram({ name: 'x_duration_seconds', help: 'duration', labelNames: ['route', 'cache'], buckets, registry: ours })
  const refCounter = new Counter({ name: 'x_requests_total', help: 'requests', labelNames: ['route', 'cache'], registers: [theirs] })
  const refHistogram = new Histogram({ name: 'x_duration_seconds', help: 'duration', labelNames: ['route', 'cache'], buckets, registers: [theirs] })
  const cells = new Map<string, { c: ReturnType<typeof counter.cell>; h: ReturnType<typeof histogram.cell> }>()
  for (const [route, cache, seconds] of observations) {
    const key = `${route}/${cache}`
    let cell = cells.get(key)
    if (cell === undefined) cells.set(key, (cell = { c: counter.cell([route, cache]), h: histogram.cell([route, cache]) }))
    cell.c.inc()
    cell.h.observe(seconds)
    refCounter.labels(route, cache).inc()
    refHistogram.labels(route, cache).observe(seconds)
  }
  t.same(await lines(ours), await lines(theirs))
  t.match(await ours.metrics(), 'x_duration_seconds_bucket{le="0.01",route="generate",cache="miss"} 2')
  ours.resetMetrics()
  t.match(await ours.metrics(), 'x_requests_total{route="generate",cache="miss"} 0')
})
