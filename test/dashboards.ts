/**
 * The Grafana dashboards under dashboards/ chart true data: a real Prometheus scrapes a real
 * corral (with Redis) in front of two fake Ollamas while a mixed load runs (cache hits and misses
 * on every layer, streamed and non-streamed generations, embeddings, an unknown model, a 500, an
 * instance that is down and gets ejected); then every PromQL expression of every panel returns
 * data, and some return the value the load implies. Also: the JSON is well formed for Grafana
 * (datasource variable everywhere, unique ids) and the provisioning YAML parses.
 */
import { readFile, readdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse } from 'yaml'
import { startFakeOllama } from './fixtures/fake-ollama.js'
import { send } from './fixtures/http.js'
import { SCRAPE_INTERVAL_MS, startPrometheus, type PromSample } from './fixtures/prometheus.js'
import { startRedisServer } from './fixtures/redis-server.js'
import { startCorral } from './fixtures/start-corral.js'

const DASHBOARDS = new URL('../dashboards/', import.meta.url)
const FILES = ['corral-performance.json', 'corral-health.json', 'corral-business.json']
const DATASOURCE = { type: 'prometheus', uid: '${datasource}' }

interface Target { refId: string; expr: string; datasource: unknown; legendFormat?: string }
interface Panel {
  id: number
  type: string
  title: string
  datasource: unknown
  targets: Target[]
  gridPos: unknown
  fieldConfig?: { defaults?: { noValue?: string } }
}
interface Dashboard {
  uid: string
  title: string
  panels: Panel[]
  templating: { list: Array<{ name: string; type: string; query: string }> }
}

async function loadDashboards(): Promise<Map<string, Dashboard>> {
  const out = new Map<string, Dashboard>()
  for (const file of FILES) out.set(file, JSON.parse(await readFile(new URL(file, DASHBOARDS), 'utf8')) as Dashboard)
  return out
}

/** Grafana's variables replaced by what Prometheus accepts: every range is `window`. */
function substitute(expr: string, window: string): string {
  return expr.replaceAll('$__rate_interval', window).replaceAll('$__range', window).replaceAll('$__interval', window)
}

// Each Prometheus takes about five seconds to apply its targets before the first scrape (its
// scrape manager's fixed reload throttle): the two live tests wait for theirs side by side.
t.jobs = 2

t.test('dashboards are Grafana JSON with the datasource variable; provisioning parses', async (t) => {
  const dashboards = await loadDashboards()
  const uids = new Set<string>()
  for (const [file, d] of dashboards) {
    t.ok(d.uid !== '' && !uids.has(d.uid), `${file}: unique uid`)
    uids.add(d.uid)
    t.match(d.templating.list, [{ name: 'datasource', type: 'datasource', query: 'prometheus' }], `${file}: datasource variable`)
    t.equal(d.templating.list.length, 1, `${file}: no other variables`)
    const ids = d.panels.map((p) => p.id)
    t.equal(new Set(ids).size, ids.length, `${file}: unique panel ids`)
    t.ok(d.panels.length >= 5, `${file}: panels`)
    for (const p of d.panels) {
      t.same(p.datasource, DATASOURCE, `${file} ${p.title}: datasource`)
      t.ok(p.targets.length >= 1, `${file} ${p.title}: targets`)
      const refIds = p.targets.map((x) => x.refId)
      t.equal(new Set(refIds).size, refIds.length, `${file} ${p.title}: unique refIds`)
      for (const target of p.targets) {
        t.same(target.datasource, DATASOURCE, `${file} ${p.title} ${target.refId}: datasource`)
        t.ok(typeof target.expr === 'string' && /corral_/.test(target.expr), `${file} ${p.title} ${target.refId}: expr on a corral metric`)
        t.notMatch(target.expr, /\$(?!__rate_interval|__range\b|__interval\b)/, `${file} ${p.title}: only Grafana's built-in variables`)
      }
    }
  }
  const provisioning = fileURLToPath(new URL('provisioning/', DASHBOARDS))
  const datasources = parse(await readFile(`${provisioning}datasources/prometheus.yaml`, 'utf8')) as { apiVersion: number; datasources: Array<{ type: string }> }
  t.equal(datasources.apiVersion, 1)
  t.match(datasources.datasources, [{ type: 'prometheus', access: 'proxy' }])
  const providers = parse(await readFile(`${provisioning}dashboards/corral.yaml`, 'utf8')) as { apiVersion: number; providers: Array<{ type: string; options: { path: string } }> }
  t.equal(providers.apiVersion, 1)
  t.match(providers.providers, [{ type: 'file', options: { path: String } }])
  const json = (await readdir(fileURLToPath(DASHBOARDS))).filter((f) => f.endsWith('.json')).sort()
  t.same(json, [...FILES].sort(), 'the provider folder holds exactly the three dashboards')
})

t.test('every panel of every dashboard shows data from a real Prometheus scraping corral', async (t) => {
  const dashboards = await loadDashboards()
  const redis = await startRedisServer(t)
  const good = await startFakeOllama({ name: 'good', tokens: 6 })
  const bad = await startFakeOllama({ name: 'bad' })
  t.teardown(() => Promise.all([good.close(), bad.close()]))
  const { url, corral } = await startCorral(t, [good.url, bad.url], {
    // load-score (the default) so that instance scores exist, without a failure penalty so that a
    // busy i0 sends work to a failing i1; no active checks: traffic decides health, and two
    // failures in a row eject (i0's single 500s between successes do not).
    balancer: { failure_penalty: '0s' },
    health: { interval: '1h', eject_after: 2, ejection_time: '1h' },
    // i0's 500s are relayed as they come (a 5xx on the dashboards), not failed over.
    proxy: { retry_on: [503] },
    redis: { url: redis.url, key_prefix: `dashboards-test-${process.pid}:` },
  })
  await corral.cache!.whenStoreUp()
  let sent = 0
  const ok = async (path: string, body: unknown, status = 200): Promise<void> => {
    const res = await send(url, 'POST', path, body)
    sent++
    t.equal(res.status, status, `${path} ${JSON.stringify(body).slice(0, 80)}`)
  }
  // A miss and a hit on every cache layer before Prometheus starts: its cache series (created on
  // their first count) exist from the first scrape on, so rates over them see every later lookup.
  const warm = [
    ['/api/generate', { model: 'llama3.2', prompt: 'warm', stream: false, options: { seed: 1 } }],
    ['/api/embed', { model: 'nomic-embed-text', input: 'warm' }],
    ['/api/embed', { model: 'nomic-embed-text', input: ['warm a', 'warm b'] }],
  ] as const
  for (const [path, body] of warm) await ok(path, body)
  await corral.cache!.settle()
  for (const [path, body] of warm) await ok(path, body)
  const before = corral.cache!.report()

  const prometheus = await startPrometheus(t, { targets: [new URL(url).host] })
  await prometheus.waitFor('count(corral_cache_requests_total)', (r) => r[0]?.value === 6, 30_000)

  // The second instance refuses connections from now on (discovery saw its models). Concurrent
  // generations fill the first one until load-score tries the second, which is then ejected.
  await bad.stop()
  for (let round = 0; round < 20 && corral.balancer.ejections[1] === 0; round++) {
    await Promise.all([0, 1, 2, 3].map((i) => ok('/api/generate', { model: 'llama3.2', prompt: `fill ${round} ${i}` })))
  }
  t.equal(corral.balancer.ejections[1], 1, 'i1 was ejected')

  /** One round of every kind of request; a second round moves every series the first created. */
  const round = async (n: number, inferenceHits: number): Promise<void> => {
    await ok('/api/generate', { model: 'llama3.2', prompt: `streamed ${n}` })
    await ok('/api/generate', { model: 'llama3.2', prompt: `whole ${n}`, stream: false })
    await ok('/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: `hi ${n}` }], options: { num_predict: 2 } })
    await ok('/api/generate', { model: 'no-such-model', prompt: 'x', stream: false }, 404)
    good.script({ kind: 'status', status: 500 }, { path: '/api/generate' })
    await ok('/api/generate', { model: 'llama3.2', prompt: `fails ${n}`, stream: false }, 500)
    const seeded = { model: 'llama3.2', prompt: `seeded ${n}`, stream: false, options: { seed: 1 } }
    const single = { model: 'nomic-embed-text', input: `one ${n}` }
    const batch = { model: 'nomic-embed-text', input: [`a ${n}`, `b ${n}`, `c ${n}`] }
    await ok('/api/generate', seeded)
    await ok('/api/embed', single)
    await ok('/api/embed', batch)
    await corral.cache!.settle()
    for (let i = 0; i < inferenceHits; i++) await ok('/api/generate', seeded)
    await ok('/api/embed', single)
    await ok('/api/embed', batch)
  }
  await round(1, 1)
  await prometheus.waitFor('sum(corral_requests_total)', (r) => r[0]?.value === sent, 30_000)
  await round(2, 3)
  // Scraped with everything, and scraped once more after that, so every series has two samples.
  await prometheus.waitFor(`sum(corral_requests_total offset ${2 * SCRAPE_INTERVAL_MS}ms)`, (r) => r[0]?.value === sent, 30_000)
  // rate() extrapolates a series to the start of its range by at most the time its first value
  // would take to reach zero at its average rate; with enough samples every cache series is
  // extrapolated alike, so a ratio of two rates is the ratio of their increases.
  await prometheus.waitFor('min(count_over_time(corral_cache_requests_total[5m]))', (r) => (r[0]?.value ?? 0) >= 12, 30_000, 250)

  // Redis answers, and Prometheus has scraped that (on a busy machine a few slow commands in a row
  // can open the cache's circuit for a retry interval: its background probe closes it again).
  await prometheus.waitFor('corral_redis_up', (r) => r[0]?.value === 1, 30_000)

  // Every range covers the whole load (Prometheus started just before it).
  const window = `${Math.ceil((Date.now() - prometheus.startedAt) / 1000) + 10}s`
  const results = new Map<string, PromSample[]>()
  for (const [file, d] of dashboards) {
    for (const p of d.panels) {
      for (const target of p.targets) {
        const expr = substitute(target.expr, window)
        const result = await prometheus.query(expr)
        results.set(target.expr, result)
        t.ok(result.length > 0, `${file} "${p.title}" ${target.refId}: data`, { expr })
        t.ok(result.some((s) => Number.isFinite(s.value)), `${file} "${p.title}" ${target.refId}: a finite value`, { expr, result })
      }
    }
  }

  // Values the load implies.
  const panel = (file: string, title: string, refId = 'A'): PromSample[] => {
    const target = dashboards.get(file)!.panels.find((p) => p.title === title)?.targets.find((x) => x.refId === refId)
    if (target === undefined) throw new Error(`no panel ${title} in ${file}`)
    return results.get(target.expr)!
  }
  const byLabel = (samples: PromSample[], label: string): Record<string, number> =>
    Object.fromEntries(samples.map((s) => [s.metric[label] ?? '', s.value]))
  const close = (a: number | undefined, b: number, what: string): void => {
    t.ok(a !== undefined && Math.abs(a - b) < 1e-9, `${what}: ${a} ~ ${b}`)
  }

  // The hit rate is that of the lookups since the first scrape.
  const after = corral.cache!.report()
  const hitRates = byLabel(panel('corral-performance.json', 'Cache hit rate per layer'), 'layer')
  t.same(Object.keys(hitRates).sort(), ['chunk', 'embedding', 'inference'])
  for (const layer of ['embedding', 'chunk', 'inference'] as const) {
    const hits = after.layers[layer].hits - before.layers[layer].hits
    const misses = after.layers[layer].misses - before.layers[layer].misses
    close(hitRates[layer], hits / (hits + misses), `${layer} hit rate`)
  }
  close(hitRates.inference, 4 / 6, 'inference: 2 misses, 4 hits')

  t.same(byLabel(panel('corral-health.json', 'Instance up'), 'exported_instance'), { i0: 1, i1: 0 }, 'i1 down')
  t.same(panel('corral-health.json', 'Redis up').map((s) => s.value), [1], 'Redis up')
  const ejections = byLabel(panel('corral-health.json', 'Ejections'), 'exported_instance')
  t.ok(ejections.i1! > 0 && ejections.i0 === 0, 'i1 ejected, i0 not')
  const errors = panel('corral-health.json', 'Instance errors by kind')
  t.ok(errors.some((s) => s.metric.exported_instance === 'i1' && s.metric.kind === 'refused'), 'i1 refused')
  t.ok(errors.some((s) => s.metric.exported_instance === 'i0' && s.metric.kind === 'status_5xx' && s.value > 0), 'i0 answered 500')
  const load = byLabel(panel('corral-health.json', 'Load distribution (requests per second by instance)'), 'exported_instance')
  t.ok(load.i0! > 0 && (load.i1 ?? 0) === 0, 'only i0 answered')
  t.ok(panel('corral-health.json', 'Score per instance').some((s) => s.metric.exported_instance === 'i0'), 'a score for i0')

  const routes = new Set(panel('corral-performance.json', 'Latency per route (p50, p95, p99)', 'C').filter((s) => Number.isFinite(s.value)).map((s) => s.metric.route))
  for (const route of ['generate', 'chat', 'embed']) t.ok(routes.has(route), `p99 latency of ${route}`)
  t.ok(byLabel(panel('corral-performance.json', 'Tokens per second per model'), 'model')['llama3.2:latest']! > 0, 'llama3.2 tokens per second')

  const reasons = byLabel(panel('corral-business.json', 'Done reason share'), 'reason')
  t.ok(reasons.stop! > 0 && reasons.length! > 0, 'stop and length shares')
  close(Object.values(reasons).reduce((a, b) => a + b, 0), 1, 'done reason shares add up')
  const models = new Set(panel('corral-business.json', 'Requests by route and model (time range)').map((s) => `${s.metric.route} ${s.metric.model}`))
  for (const m of ['generate llama3.2:latest', 'chat llama3.2:latest', 'embed nomic-embed-text:latest', 'generate other']) t.ok(models.has(m), m)
  const saved = panel('corral-business.json', 'Answered without a GPU')[0]!.value
  t.ok(saved > 0 && saved < 1, `cache savings ${saved}`)
  const errorShare = panel('corral-business.json', 'Error share')[0]!.value
  t.ok(errorShare > 0 && errorShare < 1, `error share ${errorShare}`)
  const perKey = byLabel(panel('corral-business.json', 'Requests per API key'), 'key')
  t.same(Object.keys(perKey), ['anonymous'], 'auth is off: every request is anonymous')
  t.ok(perKey.anonymous! > 0, 'requests per second of the anonymous key')
})

t.test('on a default deployment (no Redis) no panel shows a bare "No data"', async (t) => {
  // What a newcomer runs: one instance, the defaults (memory cache, no Redis, no auth), a little
  // traffic. Every panel either has data or says in its noValue text why it has none.
  const dashboards = await loadDashboards()
  const fake = await startFakeOllama({ name: 'only', tokens: 4 })
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url])
  const prometheus = await startPrometheus(t, { targets: [new URL(url).host] })
  let sent = 0
  const traffic = async (n: number): Promise<void> => {
    const requests: Array<[string, unknown]> = [
      ['/api/generate', { model: 'llama3.2', prompt: `hello ${n}` }],
      ['/api/generate', { model: 'llama3.2', prompt: 'same', stream: false, options: { seed: 1 } }],
      ['/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: `hi ${n}` }], stream: false }],
      ['/api/embed', { model: 'nomic-embed-text', input: 'same' }],
      ['/api/embed', { model: 'nomic-embed-text', input: [`a ${n}`, 'b'] }],
    ]
    for (const [path, body] of requests) {
      const res = await send(url, 'POST', path, body)
      sent++
      t.equal(res.status, 200, path)
    }
  }
  await traffic(1)
  await prometheus.waitFor('sum(corral_requests_total)', (r) => r[0]?.value === sent, 30_000)
  await traffic(2)
  await prometheus.waitFor(`sum(corral_requests_total offset ${2 * SCRAPE_INTERVAL_MS}ms)`, (r) => r[0]?.value === sent, 30_000)
  t.same((await prometheus.query('corral_cache_store_info')).map((s) => [s.metric.store, s.value]), [['memory', 1]], 'the memory store')

  const window = `${Math.ceil((Date.now() - prometheus.startedAt) / 1000) + 10}s`
  for (const [file, d] of dashboards) {
    for (const p of d.panels) {
      let data = false
      for (const target of p.targets) {
        const result = await prometheus.query(substitute(target.expr, window))
        if (result.some((s) => Number.isFinite(s.value))) data = true
      }
      const noValue = p.fieldConfig?.defaults?.noValue
      t.ok(data || (typeof noValue === 'string' && noValue.length > 0), `${file} "${p.title}": data, or a noValue text (${noValue ?? 'none'})`)
    }
  }
  const redisUp = dashboards.get('corral-health.json')!.panels.find((p) => p.title === 'Redis up')!
  t.match(redisUp.fieldConfig?.defaults?.noValue, /not configured/, 'Redis up says Redis is not configured')
})
