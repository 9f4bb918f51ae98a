/**
 * Hot reload in process: a real corral (createCorral, real sockets) in front of fake Ollamas,
 * reloaded with `corral.reload(config)` or from a config file. Instances come and go without a
 * request lost, a removed instance drains before its pool closes, weights and TTLs change for
 * what comes next, and an invalid file changes nothing.
 */
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { Redis } from 'ioredis'
import { request } from 'undici'
import { configFromObject, loadConfig } from '../../src/config/load-config.js'
import type { Config } from '../../src/config/config.js'
import { startFakeOllama, type FakeOllama } from '../fixtures/fake-ollama.js'
import { ndjson, send } from '../fixtures/http.js'
import { startRedisServer } from '../fixtures/redis-server.js'
import { startCorral } from '../fixtures/start-corral.js'
import { waitFor } from '../fixtures/wait-for.js'

const GENERATE = { model: 'llama3.2', prompt: 'Why is the sky blue?', stream: false }
const dir = mkdtempSync(join(tmpdir(), 'corral-reload-'))

/** Instances by name: a url, or a url with settings. */
type Fleet = Record<string, string | { url: string; weight?: number; max_concurrency?: number }>

/** A compiled config as startCorral builds it, with named instances. */
function configOf(instances: Fleet, extra: Record<string, unknown> = {}): Config {
  return configFromObject({
    listen: '127.0.0.1:0',
    log: { level: 'info' },
    instances: Object.entries(instances).map(([name, v]) => (typeof v === 'string' ? { name, url: v } : { name, ...v })),
    ...extra,
  }).config
}

const named = (instances: Fleet): unknown[] =>
  Object.entries(instances).map(([name, v]) => (typeof v === 'string' ? { name, url: v } : { name, ...v }))

async function fakes(n: number, options: Parameters<typeof startFakeOllama>[0] = {}): Promise<FakeOllama[]> {
  const started = await Promise.all(Array.from({ length: n }, (_, i) => startFakeOllama({ name: `fake-${i}`, ...options })))
  t.teardown(() => Promise.all(started.map((f) => f.close())))
  return started
}

interface Stats {
  queue_depth: number
  strategy: string
  instances: { name: string; url: string; weight: number; max_concurrency: number; requests: number; in_flight: number }[]
}
const stats = async (url: string): Promise<Stats> => (await send(url, 'GET', '/api/load-balancer-stats')).json as Stats

t.test('an added instance gets traffic at once; the stats and metrics list it', async (t) => {
  const [a, b] = await fakes(2)
  const { corral, url, logs } = await startCorral(t, [], { instances: named({ a: a!.url }), balancer: { policy: 'round-robin' } })
  const result = corral.reload(configOf({ a: a!.url, b: b!.url }, { balancer: { policy: 'round-robin' } }))
  t.same(result, { status: 'reloaded', changes: [`instances.b: added (${b!.url})`], restartRequired: [] })
  t.ok(logs.some((l) => l.msg === 'config reloaded' && (l.changes as string[]).includes(`instances.b: added (${b!.url})`)), 'logged with its changes')
  for (let i = 0; i < 6; i++) t.equal((await send(url, 'POST', '/api/generate', { ...GENERATE, prompt: `q${i}` })).status, 200)
  t.equal(a!.count('/api/generate'), 3)
  t.equal(b!.count('/api/generate'), 3, 'the new instance takes its share')
  t.same((await stats(url)).instances.map((i) => i.name), ['a', 'b'])
  // It was health-checked and discovered as soon as it was added.
  await b!.waitUntil((f) => f.background.some((r) => r.path === '/api/tags'))
  const metrics = (await send(url, 'GET', '/metrics')).text
  t.match(metrics, /corral_instance_up\{instance="b"\} 1/)
  t.match(metrics, /corral_instance_ejections_total\{instance="b"\} 0/, 'its counters start at 0')
  t.match(metrics, /corral_config_reloads_total\{result="ok"\} 1/)
  t.match(metrics, /corral_config_last_reload_successful 1/)
})

t.test('a removed instance finishes its stream, takes nothing new, then closes its pool', async (t) => {
  const [a] = await fakes(1, { tokens: 40, tokenDelayMs: 20 })
  const [b] = await fakes(1)
  const { corral, url, logs } = await startCorral(t, [], { instances: named({ a: a!.url }) })
  const old = corral.balancer.instances[0]!
  const res = await request(`${url}/api/generate`, { method: 'POST', body: JSON.stringify({ model: 'llama3.2', prompt: 'long' }) })
  const body = res.body.text()
  await a!.waitForRequests(1, '/api/generate')

  const result = corral.reload(configOf({ b: b!.url }))
  t.same(result.status === 'reloaded' && result.changes, [`instances.b: added (${b!.url})`, `instances.a: removed (${a!.url})`])
  t.equal(old.retired, true)
  t.equal(old.inFlight, 1, 'the stream is still on it')
  t.notOk(old.pool.closed, 'not closed while a request runs')
  // When the pool closes, the fake must have finished sending the stream.
  const retired = corral.retired().then(() => ({ fakeStreaming: a!.inFlight, closed: old.pool.closed }))

  for (let i = 0; i < 4; i++) t.equal((await send(url, 'POST', '/api/generate', { ...GENERATE, prompt: `n${i}` })).status, 200)
  t.equal(b!.count('/api/generate'), 4, 'new requests go to the new instance')
  t.equal(a!.count('/api/generate'), 1, 'none to the removed one')
  t.same((await stats(url)).instances.map((i) => i.name), ['b'])

  const lines = ndjson(await body)
  t.equal(res.statusCode, 200)
  t.equal(lines.length, 41, 'every token and the final chunk')
  t.equal(lines.at(-1)!.done, true, 'the stream completed intact')
  t.notOk(lines.some((l) => 'error' in l))
  t.same(await retired, { fakeStreaming: 0, closed: true }, 'the pool closed only after the stream ended')
  t.ok(logs.some((l) => l.msg === 'instance removed: draining' && l.instance === 'a' && l.in_flight === 1))
  t.ok(logs.some((l) => l.msg === 'instance removed: closed' && l.instance === 'a'))
  t.notOk(/instance="a"/.test((await send(url, 'GET', '/metrics')).text.split('\n').filter((l) => l.startsWith('corral_instance_up')).join('\n')), 'gone from the gauges')
})

t.test('requests queued for a removed instance are placed on the new fleet, not failed', async (t) => {
  const [a] = await fakes(1, { tokens: 30, tokenDelayMs: 20 })
  const [b] = await fakes(1)
  const { corral, url } = await startCorral(t, [], { instances: [{ name: 'a', url: a!.url, max_concurrency: 1 }] })
  const first = send(url, 'POST', '/api/generate', { ...GENERATE, prompt: 'first' })
  await a!.waitForRequests(1, '/api/generate')
  const second = send(url, 'POST', '/api/generate', { ...GENERATE, prompt: 'second' })
  await waitFor('the second request to queue', () => corral.balancer.queueDepth === 1)
  corral.reload(configOf({ b: b!.url }))
  const [r1, r2] = await Promise.all([first, second])
  t.equal(r1.status, 200, 'the request in flight on the removed instance finished')
  t.equal(r2.status, 200, 'the queued request was answered')
  t.equal(a!.count('/api/generate'), 1)
  t.equal(b!.count('/api/generate'), 1, 'by the new instance')
  t.equal(corral.balancer.queueDepth, 0)
})

t.test('re-weighting and a new cap apply in place; what was learned is kept', async (t) => {
  const [a, b] = await fakes(2)
  const base = { balancer: { policy: 'round-robin' } }
  const { corral, url } = await startCorral(t, [], { instances: named({ a: a!.url, b: b!.url }), ...base })
  for (let i = 0; i < 4; i++) await send(url, 'POST', '/api/generate', { ...GENERATE, prompt: `w${i}` })
  t.same([a!.count('/api/generate'), b!.count('/api/generate')], [2, 2])
  const instanceA = corral.balancer.instances[0]!
  const ttfb = instanceA.timing.generation.ttfbMs.value
  const result = corral.reload(configOf({ a: { url: a!.url, weight: 3, max_concurrency: 8 }, b: b!.url }, base))
  t.same(result.status === 'reloaded' && result.changes, ['instances.a.weight: 1 -> 3', 'instances.a.maxConcurrency: learned -> 8'])
  t.equal(corral.balancer.instances[0], instanceA, 'the same instance, updated in place')
  t.equal(instanceA.timing.generation.ttfbMs.value, ttfb, 'its timings are kept')
  for (let i = 0; i < 8; i++) await send(url, 'POST', '/api/generate', { ...GENERATE, prompt: `x${i}` })
  t.same([a!.count('/api/generate') - 2, b!.count('/api/generate') - 2], [6, 2], 'smooth weighted round-robin 3:1')
  const after = (await stats(url)).instances[0]!
  t.match(after, { name: 'a', weight: 3, max_concurrency: 8, requests: 8 }, 'its request count continues')
})

t.test('a changed url is a new instance under the same name', async (t) => {
  const [a, b] = await fakes(2)
  const { corral, url } = await startCorral(t, [], { instances: named({ main: a!.url }) })
  const before = corral.balancer.instances[0]!
  const result = corral.reload(configOf({ main: b!.url }))
  t.same(result.status === 'reloaded' && result.changes, [`instances.main.url: ${a!.url} -> ${b!.url}`])
  t.not(corral.balancer.instances[0], before)
  await corral.retired()
  t.ok(before.pool.closed)
  t.equal((await send(url, 'POST', '/api/generate', GENERATE)).status, 200)
  t.equal(b!.count('/api/generate'), 1)
  t.equal(a!.count('/api/generate'), 0)
})

t.test('a shorter health interval restarts the checks on the new interval', async (t) => {
  const [a] = await fakes(1)
  const { corral } = await startCorral(t, [], { instances: named({ a: a!.url }) })
  const checks = (): number => a!.background.filter((r) => r.path === '/api/version').length
  await a!.waitUntil(() => checks() >= 1)
  corral.reload(configOf({ a: a!.url }, { health: { interval: '1s' } }))
  // With the start-up interval (30 s) no second check would come within the deadline.
  await waitFor('two more health checks', () => checks() >= 3, 10_000)
  t.ok(checks() >= 3)
})

t.test('new pool options replace the pools; a stream on the old pool finishes', async (t) => {
  const [a] = await fakes(1, { tokens: 20, tokenDelayMs: 20 })
  const { corral, url } = await startCorral(t, [], { instances: named({ a: a!.url }) })
  const instance = corral.balancer.instances[0]!
  const oldPool = instance.pool
  const res = await request(`${url}/api/generate`, { method: 'POST', body: JSON.stringify({ model: 'llama3.2', prompt: 'long' }) })
  await a!.waitForRequests(1, '/api/generate')
  const result = corral.reload(configOf({ a: a!.url }, { proxy: { connections_per_instance: 4, connect_timeout: '2s' } }))
  t.same(result.status === 'reloaded' && result.changes, ['proxy.connectTimeoutMs: 5000 -> 2000', 'proxy.connectionsPerInstance: 128 -> 4'])
  t.equal(corral.balancer.instances[0], instance, 'the same instance')
  t.not(instance.pool, oldPool, 'with a new pool')
  t.ok(oldPool.closed, 'the old one is closing')
  t.equal((await send(url, 'POST', '/api/generate', GENERATE)).status, 200, 'new requests use the new pool')
  const lines = ndjson(await res.body.text())
  t.equal(lines.length, 21)
  t.equal(lines.at(-1)!.done, true, 'the stream on the old pool completed')
})

t.test('settings that need a restart are kept and reported; the rest applies', async (t) => {
  const [a] = await fakes(1)
  const { corral, url, logs } = await startCorral(t, [], { instances: named({ a: a!.url }) })
  const seen: [Config, Config][] = []
  corral.onReload((next, prev) => seen.push([next, prev]))
  const result = corral.reload(
    configOf({ a: a!.url }, { listen: '127.0.0.1:1', log: { level: 'warn' }, cache: { memory: { max_size: '1MiB' } }, proxy: { max_attempts: 1 }, health: { interval: '10s' } }),
  )
  t.equal(result.status, 'reloaded')
  if (result.status !== 'reloaded') return
  t.same(result.restartRequired, ['listen', 'cache.memory.max_size'])
  t.same(result.changes, ['logLevel: "info" -> "warn"', 'health.intervalMs: 30000 -> 10000', 'proxy.maxAttempts: 3 -> 1'])
  t.equal(corral.config.listen.port, 0, 'the running listen address is kept')
  t.equal(corral.config.proxy.maxAttempts, 1)
  t.equal(corral.logger.level, 'warn', 'the log level changed live')
  t.equal((await send(url, 'GET', '/api/version')).status, 200, 'still serving on the old address')
  const line = logs.find((l) => l.msg.startsWith('config reloaded; needs a restart'))
  t.match(line, { level: 'warn', restart_required: ['listen', 'cache.memory.max_size'] })
  t.equal(seen.length, 1, 'listeners were told')
  t.equal(seen[0]![0], corral.config)
  t.equal(seen[0]![1].logLevel, 'info')
})

t.test('keys, body limits, the per-client limit and trust_proxy change live', async (t) => {
  const [a] = await fakes(1, { tokenDelayMs: 20, tokens: 30 })
  const before = { auth: { enabled: true, keys: [{ name: 'old', key: 'key-old-0123456789' }] }, limits: { max_body_size: { generation: '1MiB' } } }
  const { corral, url } = await startCorral(t, [], { instances: named({ a: a!.url }), ...before })
  const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` })
  const big = { ...GENERATE, prompt: 'x'.repeat(8 * 1024) }
  t.equal((await send(url, 'POST', '/api/generate', big, bearer('key-old-0123456789'))).status, 200, 'an 8 KiB body under 1 MiB')
  t.equal((await send(url, 'POST', '/api/generate', GENERATE, bearer('key-new-0123456789'))).status, 401, 'the new key is not known yet')

  const after = {
    auth: { enabled: true, keys: [{ name: 'new', key: 'key-new-0123456789' }] },
    limits: { max_body_size: { generation: '4KiB' } },
    server: { max_requests_per_client: 1, trust_proxy: true },
  }
  const result = corral.reload(configOf({ a: a!.url }, after))
  t.equal(result.status, 'reloaded')
  t.equal((await send(url, 'POST', '/api/generate', GENERATE, bearer('key-old-0123456789'))).status, 401, 'a removed key is refused at once')
  t.equal((await send(url, 'POST', '/api/generate', GENERATE, bearer('key-new-0123456789'))).status, 200, 'an added key works at once')
  const tooBig = await send(url, 'POST', '/api/generate', big, bearer('key-new-0123456789'))
  t.equal(tooBig.status, 413, 'the smaller body limit applies')
  t.match(tooBig.json, { error: /4096|4 ?KiB|too large/i })

  const held = await request(`${url}/api/generate`, {
    method: 'POST',
    headers: { ...bearer('key-new-0123456789'), 'x-forwarded-for': '10.0.0.1' },
    body: JSON.stringify({ model: 'llama3.2', prompt: 'held' }),
  })
  const same = await send(url, 'POST', '/api/generate', GENERATE, { ...bearer('key-new-0123456789'), 'x-forwarded-for': '10.0.0.1' })
  t.equal(same.status, 429, 'one request per client, the client read from X-Forwarded-For (trust_proxy)')
  const other = await send(url, 'POST', '/api/generate', GENERATE, { ...bearer('key-new-0123456789'), 'x-forwarded-for': '10.0.0.2' })
  t.equal(other.status, 200, 'another client behind the same proxy')
  t.equal(ndjson(await held.body.text()).at(-1)!.done, true, 'the held stream finishes whole')
  await corral.perClient.whenInFlightAtMost(0)
  t.equal(corral.perClient.clients, 0, 'every per-client slot came back')
})

t.test('a reload whose JWT key file is gone by the time it applies changes nothing', async (t) => {
  const [a, b] = await fakes(2)
  const key = 'key-k-0123456789ab'
  const { corral, url, logs } = await startCorral(t, [], { instances: named({ a: a!.url }), auth: { enabled: true, keys: [{ name: 'k', key }] } })
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const pem = join(dir, 'jwt-public.pem')
  writeFileSync(pem, publicKey.export({ type: 'spki', format: 'pem' }))
  // Validated while the file exists (as a reload reads it), then removed before it is applied.
  const next = configOf({ a: a!.url, b: b!.url }, { auth: { enabled: true, keys: [{ name: 'k', key }], jwt: { public_key: pem, algorithms: ['RS256'] } } })
  unlinkSync(pem)
  const result = corral.reload(next)
  t.equal(result.status, 'invalid')
  t.ok(logs.some((l) => typeof l.msg === 'string' && l.msg.startsWith('config reload rejected')), 'one error line')
  t.equal(corral.config.instances.length, 1, 'the fleet is the old one')
  for (let i = 0; i < 4; i++) t.equal((await send(url, 'POST', '/api/generate', { ...GENERATE, prompt: `k${i}` }, { authorization: `Bearer ${key}` })).status, 200, 'the old keys still work')
  t.equal(b!.count('/api/generate'), 0, 'the instance of the rejected config gets nothing')
})

t.test('a new inference TTL applies to new entries', async (t) => {
  const redis = await startRedisServer(t)
  const [a] = await fakes(1)
  const cacheCfg = (ttl: string): Record<string, unknown> => ({
    redis: { url: redis.url, key_prefix: 'rl:', local_cache_size: 0 },
    cache: { layers: { inference: { ttl, policy: 'always' } } },
  })
  const { corral, url } = await startCorral(t, [], { instances: named({ a: a!.url }), ...cacheCfg('24h') })
  await corral.cache!.whenStoreUp()
  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())
  const store = async (prompt: string): Promise<number> => {
    const before = new Set(await admin.keys('rl:*'))
    t.equal((await send(url, 'POST', '/api/generate', { ...GENERATE, prompt })).headers['x-corral-cache'], 'miss')
    await corral.cache!.settle()
    const added = (await admin.keys('rl:*')).filter((k) => !before.has(k))
    t.equal(added.length, 1, 'one new entry')
    return admin.pttl(added[0]!)
  }
  const day = await store('before')
  t.ok(day > 23 * 3600_000 && day <= 24 * 3600_000, `24h entry (pttl ${day})`)
  const result = corral.reload(configOf({ a: a!.url }, cacheCfg('1h')))
  t.same(result.status === 'reloaded' && result.changes, ['cache.layers.inference.ttlMs: 86400000 -> 3600000'])
  const hour = await store('after')
  t.ok(hour > 3500_000 && hour <= 3600_000, `1h entry (pttl ${hour})`)
  t.equal((await send(url, 'POST', '/api/generate', { ...GENERATE, prompt: 'before' })).headers['x-corral-cache'], 'hit', 'older entries stay')

  corral.reload(configOf({ a: a!.url }, { ...cacheCfg('1h'), cache: { layers: { inference: { ttl: '1h', policy: 'off' } } } }))
  t.equal((await send(url, 'POST', '/api/generate', { ...GENERATE, prompt: 'before' })).headers['x-corral-cache'], 'bypass', 'the policy changed live')
})

t.test('an invalid file is rejected with one error line; the running config keeps serving', async (t) => {
  const [a, b] = await fakes(2)
  const file = join(dir, 'invalid.yaml')
  const write = (instances: string[]): void =>
    writeFileSync(file, `listen: 127.0.0.1:0\ninstances:\n${instances.map((u, i) => `  - name: n${i}\n    url: ${u}\n`).join('')}`)
  write([a!.url])
  const configSource = { file, load: () => loadConfig({ file, env: {} }).config }
  const { corral, url, logs } = await startCorral(t, [], { instances: [{ name: 'n0', url: a!.url }] }, { configSource })

  writeFileSync(file, 'instances: [\n  - url: oops\n')
  const yaml = corral.reloadFromSource('test')
  t.match(yaml, { status: 'invalid', error: /^invalid config in .*invalid\.yaml: .*invalid\.yaml:\d+:\d+: / }, 'the YAML error, with its position')
  writeFileSync(file, `listen: 127.0.0.1:0\ninstances:\n  - url: ${b!.url}\n    weight: -1\n`)
  const schema = corral.reloadFromSource('test')
  t.match(schema, { status: 'invalid', error: `invalid config in ${file}: instances[0].weight` })
  const errors = logs.filter((l) => l.level === 'error')
  t.equal(errors.length, 2, 'one line per rejected reload')
  t.match(errors[1], { trigger: 'test', file, msg: /^config reload rejected, running config kept: instances\[0\]\.weight/ })
  t.same(corral.balancer.instances.map((i) => i.url), [a!.url], 'the running fleet is unchanged')
  t.equal((await send(url, 'POST', '/api/generate', GENERATE)).status, 200)
  t.equal(a!.count('/api/generate'), 1, 'still served by the old config')
  const metrics = (await send(url, 'GET', '/metrics')).text
  t.match(metrics, /corral_config_reloads_total\{result="invalid"\} 2/)
  t.match(metrics, /corral_config_last_reload_successful 0/)

  write([b!.url])
  t.match(corral.reloadFromSource('test'), { status: 'reloaded' })
  t.equal((await send(url, 'POST', '/api/generate', GENERATE)).status, 200)
  t.equal(b!.count('/api/generate'), 1, 'a valid file is applied after invalid ones')
})

t.test('a burst of requests across reloads: none lost, none sent twice', async (t) => {
  const [a, b, c] = await fakes(3, { tokens: 6, tokenDelayMs: 3 })
  const fleets: Fleet[] = [
    { a: a!.url, b: b!.url },
    { a: a!.url },
    { b: b!.url, c: c!.url },
    { a: { url: a!.url, weight: 3 }, c: { url: c!.url, max_concurrency: 1 } },
    { c: c!.url, a: a!.url, b: b!.url },
  ]
  const { corral, url, logs } = await startCorral(t, [], { instances: named(fleets[0]!) })
  const CLIENTS = 20
  const EACH = 10
  let answered = 0
  const statuses: number[] = []
  const client = async (n: number): Promise<void> => {
    for (let i = 0; i < EACH; i++) {
      const stream = i % 2 === 0
      const res = await send(url, 'POST', '/api/generate', { ...GENERATE, prompt: `c${n} r${i}`, stream })
      statuses.push(res.status)
      if (stream && ndjson(res.text).at(-1)?.done !== true) throw new Error('a stream was cut')
      answered++
    }
  }
  const clients = Promise.all(Array.from({ length: CLIENTS }, (_, n) => client(n)))
  for (let k = 1; k <= 12; k++) {
    await waitFor(`${k * 15} answers`, () => answered >= k * 15 || answered === CLIENTS * EACH)
    t.equal(corral.reload(configOf(fleets[k % fleets.length]!)).status, 'reloaded')
  }
  await clients
  await corral.retired()
  t.equal(statuses.length, CLIENTS * EACH)
  t.ok(statuses.every((s) => s === 200), 'every request answered 200')
  const received = a!.count('/api/generate') + b!.count('/api/generate') + c!.count('/api/generate')
  t.equal(received, CLIENTS * EACH, 'each request reached exactly one instance')
  t.notOk(logs.some((l) => l.msg === 'attempt failed'), 'no attempt failed')
})
