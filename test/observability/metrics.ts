/**
 * GET /metrics after real traffic through corral to fake Ollamas: the counters match what
 * happened (per route, model, instance, status class and cache outcome; tokens from the fakes'
 * final chunks; instance errors and ejections), label values stay bounded, the separate listener
 * serves the same registry, and promtool finds the exposition clean.
 */
import { execFile } from 'node:child_process'
import t from 'tap'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { ndjson, send } from '../fixtures/http.js'
import { startRedisServer } from '../fixtures/redis-server.js'
import { startCorral, type LogLine } from '../fixtures/start-corral.js'

/** One sample: metric name with its labels, e.g. `corral_requests_total{route="embed",...}`. */
type Samples = Map<string, number>

/** Parses the text exposition format into samples keyed by name and sorted labels. */
function parseExposition(text: string): Samples {
  const samples: Samples = new Map()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null) throw new Error(`unparsable exposition line: ${line}`)
    const labels = [...(match[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)]
      .map((m) => `${m[1]}="${m[2]}"`)
      .sort()
    samples.set(labels.length === 0 ? match[1]! : `${match[1]}{${labels.join(',')}}`, Number(match[3]))
  }
  return samples
}

/** The sample named `name` with exactly these labels (0 when absent). */
function value(samples: Samples, name: string, labels: Record<string, string> = {}): number {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v}"`).sort()
  return samples.get(parts.length === 0 ? name : `${name}{${parts.join(',')}}`) ?? 0
}

/** Sum of every sample of `name` whose labels include `labels`. */
function sum(samples: Samples, name: string, labels: Record<string, string> = {}): number {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`)
  let total = 0
  for (const [key, v] of samples) {
    if (key !== name && !key.startsWith(`${name}{`)) continue
    if (wanted.every((w) => key.includes(w))) total += v
  }
  return total
}

/** Label values a metric has for `label`. */
function labelValues(samples: Samples, name: string, label: string): Set<string> {
  const values = new Set<string>()
  for (const key of samples.keys()) {
    if (!key.startsWith(`${name}{`)) continue
    const m = new RegExp(`${label}="([^"]*)"`).exec(key)
    if (m !== null) values.add(m[1]!)
  }
  return values
}

async function scrape(url: string): Promise<{ text: string; samples: Samples; type: string }> {
  const res = await send(url, 'GET', '/metrics')
  if (res.status !== 200) throw new Error(`GET /metrics: ${res.status} ${res.text}`)
  return { text: res.text, samples: parseExposition(res.text), type: String(res.headers['content-type']) }
}

/** Runs `promtool check metrics` on `text`; resolves with its exit code and output. */
function promtoolCheck(text: string): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1
      resolve({ code, output: `${stdout}${stderr}${err !== null && typeof err.code !== 'number' ? err.message : ''}` })
    })
    child.stdin?.end(text)
  })
}

const KNOWN_MODELS: ReadonlySet<string> = new Set(['llama3.2:latest', 'nomic-embed-text:latest'])
const modelLabel = (model: unknown): string => {
  if (typeof model !== 'string') return 'none'
  const key = model.includes(':') ? model : `${model}:latest`
  return KNOWN_MODELS.has(key) ? key : 'other'
}

t.test('after a mixed load, /metrics counts what happened', async (t) => {
  const good = await startFakeOllama({ name: 'good', tokens: 6 })
  const bad = await startFakeOllama({ name: 'bad' })
  t.teardown(() => Promise.all([good.close(), bad.close()]))
  const { url, corral, logs } = await startCorral(t, [good.url, bad.url], {
    balancer: { policy: 'round-robin' },
    // No active checks during the test: only the traffic decides instance health.
    health: { interval: '1h', eject_after: 2, ejection_time: '1h' },
    // A 500 is relayed as it is (counted as a 5xx request), not failed over to the dead i1.
    proxy: { retry_on: [503] },
  })
  // i1 refuses every connection from now on (discovery already saw its models).
  await bad.stop()

  const generate = { model: 'llama3.2', prompt: 'hello' }
  const streamed = await send(url, 'POST', '/api/generate', generate)
  t.equal(streamed.status, 200)
  const final = ndjson(streamed.text).at(-1)!
  const notStreamed = await send(url, 'POST', '/api/generate', { ...generate, prompt: 'again', stream: false })
  t.equal(notStreamed.status, 200)
  const chat = await send(url, 'POST', '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], options: { num_predict: 2 } })
  t.equal(chat.status, 200)
  const embed = await send(url, 'POST', '/api/embed', { model: 'nomic-embed-text', input: 'x' })
  t.equal(embed.status, 200)
  const seeded = { model: 'llama3.2', prompt: 'seeded', stream: false, options: { seed: 7 } }
  const miss = await send(url, 'POST', '/api/generate', seeded)
  t.equal(miss.headers['x-corral-cache'], 'miss')
  await corral.cache!.settle()
  const hit = await send(url, 'POST', '/api/generate', seeded)
  t.equal(hit.headers['x-corral-cache'], 'hit')
  const unknown = await send(url, 'POST', '/api/generate', { model: 'no-such-model', prompt: 'x', stream: false })
  t.equal(unknown.status, 404, 'the fake does not have it')
  // Keep sending until round robin has tried i1 enough times to eject it.
  for (let i = 0; i < 10 && corral.balancer.ejections[1] === 0; i++) {
    t.equal((await send(url, 'POST', '/api/embed', { model: 'nomic-embed-text', input: `e${i}` })).status, 200)
  }
  t.equal(corral.balancer.ejections[1], 1, 'i1 was ejected')
  good.script({ kind: 'status', status: 500 }, { path: '/api/generate' })
  t.equal((await send(url, 'POST', '/api/generate', { ...generate, stream: false })).status, 500)

  const { samples, type, text } = await scrape(url)
  t.match(type, /^text\/plain; version=0\.0\.4/)

  // Every request the log shows is counted once, under its labels.
  const requestLogs = logs.filter((l: LogLine) => l.msg === 'request')
  t.equal(sum(samples, 'corral_requests_total'), requestLogs.length, 'one count per request')
  const expected = new Map<string, number>()
  for (const l of requestLogs) {
    const labels = {
      route: String(l.route),
      model: modelLabel(l.model),
      instance: typeof l.instance === 'string' ? l.instance : 'none',
      status_class: `${Math.floor(Number(l.status) / 100)}xx`,
      cache: typeof l.cache === 'string' ? l.cache : 'none',
      key: 'anonymous',
    }
    const key = JSON.stringify(labels)
    expected.set(key, (expected.get(key) ?? 0) + 1)
  }
  for (const [key, n] of expected) {
    t.equal(value(samples, 'corral_requests_total', JSON.parse(key) as Record<string, string>), n, key)
  }
  t.equal(value(samples, 'corral_requests_total', { route: 'generate', model: 'llama3.2:latest', instance: 'none', status_class: '2xx', cache: 'hit', key: 'anonymous' }), 1, 'the cache hit, no instance')
  t.equal(sum(samples, 'corral_requests_total', { model: 'other' }), 1, 'an unknown model counts as other')
  t.notOk(labelValues(samples, 'corral_requests_total', 'model').has('no-such-model:latest'), 'no unbounded model label')
  t.equal(sum(samples, 'corral_requests_total', { status_class: '5xx' }), 1)
  t.equal(sum(samples, 'corral_requests_total', { instance: 'i1' }), 0, 'i1 answered nothing')

  // Histograms: one observation per request; time to first byte for those whose headers went out.
  t.equal(sum(samples, 'corral_request_duration_seconds_count'), requestLogs.length)
  t.equal(value(samples, 'corral_request_duration_seconds_count', { route: 'generate', cache: 'hit' }), 1)
  t.ok(value(samples, 'corral_time_to_first_byte_seconds_count', { route: 'embed', cache: 'miss' }) >= 1)
  t.equal(value(samples, 'corral_request_duration_seconds_bucket', { route: 'generate', cache: 'hit', le: '600' }), 1)

  // Tokens: the fakes' own counts, summed over the generations an instance answered 200.
  const generations = good.requests.filter((r) => r.path === '/api/generate' || r.path === '/api/chat')
  t.equal(final.eval_count, 6)
  // streamed, not streamed, the seeded miss: 6 tokens each; the chat: num_predict 2.
  t.equal(value(samples, 'corral_tokens_total', { model: 'llama3.2:latest', kind: 'completion' }), 6 + 6 + 2 + 6)
  const promptTokens = [streamed, notStreamed, chat, miss].reduce((n, a) => n + Number(ndjson(a.text).at(-1)!.prompt_eval_count), 0)
  t.ok(promptTokens > 0)
  t.equal(value(samples, 'corral_tokens_total', { model: 'llama3.2:latest', kind: 'prompt' }), promptTokens, 'prompt tokens')
  t.equal(value(samples, 'corral_tokens_per_second_count', { model: 'llama3.2:latest', instance: 'i0' }), 4)
  t.equal(value(samples, 'corral_done_reason_total', { model: 'llama3.2:latest', reason: 'stop' }), 3)
  t.equal(value(samples, 'corral_done_reason_total', { model: 'llama3.2:latest', reason: 'length' }), 1, 'the chat hit num_predict')
  t.ok(generations.length >= 6, 'the fake saw the generations')

  // Instances: errors by kind as the log reports the failed attempts, i1 ejected and down.
  const failures = logs.filter((l) => l.msg === 'attempt failed')
  for (const kind of new Set(failures.map((l) => String(l.kind)))) {
    t.equal(value(samples, 'corral_instance_errors_total', { instance: 'i1', kind }), failures.filter((l) => l.kind === kind).length, `i1 ${kind}`)
  }
  t.ok(sum(samples, 'corral_instance_errors_total', { instance: 'i1' }) >= 2)
  t.equal(value(samples, 'corral_instance_errors_total', { instance: 'i0', kind: 'status_5xx' }), 1)
  t.equal(value(samples, 'corral_instance_ejections_total', { instance: 'i1' }), 1)
  t.equal(value(samples, 'corral_instance_ejections_total', { instance: 'i0' }), 0)
  t.equal(value(samples, 'corral_instance_up', { instance: 'i0' }), 1)
  t.equal(value(samples, 'corral_instance_up', { instance: 'i1' }), 0)
  t.equal(value(samples, 'corral_instance_in_flight', { instance: 'i0' }), 0)
  t.equal(value(samples, 'corral_instance_queue_depth'), 0)
  t.notOk(samples.has('corral_instance_score{instance="i0"}'), 'no score under round robin')

  // Cache: the seeded generation missed then hit; embeddings missed (chunk layer).
  t.equal(value(samples, 'corral_cache_requests_total', { layer: 'inference', result: 'hit' }), 1)
  t.equal(value(samples, 'corral_cache_requests_total', { layer: 'inference', result: 'miss' }), 1)
  const report = corral.cache!.report()
  t.equal(value(samples, 'corral_cache_requests_total', { layer: 'chunk', result: 'miss' }), report.layers.chunk.misses)
  t.equal(value(samples, 'corral_cache_entries', { layer: 'inference' }), 1)
  t.ok(value(samples, 'corral_cache_bytes', { layer: 'inference' }) > 0)
  t.equal(value(samples, 'corral_cache_coalesced_total'), 0)
  t.notOk(samples.has('corral_redis_up'), 'no Redis configured')
  t.equal(value(samples, 'corral_cache_store_info', { store: 'memory' }), 1, 'the cache lives in memory')

  // Process and runtime defaults.
  t.ok(samples.has('process_cpu_user_seconds_total'))
  t.ok(samples.has('nodejs_eventloop_lag_seconds'))

  // A second scrape does not count the cache twice.
  const again = await scrape(url)
  t.equal(value(again.samples, 'corral_cache_requests_total', { layer: 'inference', result: 'hit' }), 1)

  const check = await promtoolCheck(text)
  t.equal(check.code, 0, `promtool check metrics: ${check.output}`)
})

t.test('metrics.listen serves /metrics on a separate address', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url], { metrics: { listen: '127.0.0.1:0' } })
  const metricsUrl = corral.metricsUrl()
  t.ok(metricsUrl !== undefined && metricsUrl !== url)
  t.equal((await send(url, 'POST', '/api/embed', { model: 'nomic-embed-text', input: 'x' })).status, 200)
  const separate = await scrape(metricsUrl!)
  t.equal(sum(separate.samples, 'corral_requests_total', { route: 'embed' }), 1)
  t.ok(Number.isFinite(value(separate.samples, 'corral_instance_score', { instance: 'i0' })), 'a score under load-score (the default)')
  t.ok(separate.samples.has('corral_instance_score{instance="i0"}'))
  t.equal((await send(metricsUrl!, 'GET', '/api/tags')).status, 404, 'nothing but /metrics there')
  t.equal((await scrape(url)).samples.size > 0, true, 'the main address serves it too')
  const check = await promtoolCheck(separate.text)
  t.equal(check.code, 0, `promtool check metrics: ${check.output}`)
})

t.test('metrics.enabled false: no /metrics', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url], { metrics: { enabled: false } })
  t.equal(corral.metrics, undefined)
  t.not((await send(url, 'GET', '/metrics')).status, 200)
})

t.test('instance errors by kind: a stream cut mid-answer, a 429, a 503 held back for failover', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], { health: { interval: '1h', eject_after: 0 } })
  fake.script({ kind: 'die-after-chunks', chunks: 2 }, { path: '/api/generate' })
  const cut = await send(url, 'POST', '/api/generate', { model: 'llama3.2', prompt: 'cut' })
  t.equal(cut.status, 200, 'the headers were out before the cut')
  fake.script({ kind: 'status', status: 429 }, { path: '/api/generate' })
  t.equal((await send(url, 'POST', '/api/generate', { model: 'llama3.2', prompt: 'x', stream: false })).status, 429)
  fake.script({ kind: 'status', status: 503 }, { path: '/api/generate' })
  t.equal((await send(url, 'POST', '/api/generate', { model: 'llama3.2', prompt: 'y', stream: false })).status, 503, 'the only instance was busy')
  const { samples } = await scrape(url)
  t.equal(value(samples, 'corral_instance_errors_total', { instance: 'i0', kind: 'cut' }), 1)
  t.equal(value(samples, 'corral_instance_errors_total', { instance: 'i0', kind: 'status_429' }), 1)
  t.equal(value(samples, 'corral_instance_errors_total', { instance: 'i0', kind: 'busy' }), 1)
  t.equal(sum(samples, 'corral_instance_errors_total'), 3)
  t.equal(value(samples, 'corral_requests_total', { route: 'generate', model: 'llama3.2:latest', instance: 'i0', status_class: '4xx', cache: 'bypass', key: 'anonymous' }), 1)
})

t.test('corral_redis_up follows the Redis store', async (t) => {
  const redis = await startRedisServer(t)
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url], { redis: { url: redis.url, key_prefix: 'metrics-test:' } })
  // The store connects in the background; there is no event to wait on from here.
  await corral.cache!.whenStoreUp()
  const { samples } = await scrape(url)
  t.equal(value(samples, 'corral_redis_up'), 1)
  t.equal(value(samples, 'corral_cache_store_info', { store: 'redis' }), 1, 'the cache lives in Redis')
})
