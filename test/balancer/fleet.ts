/**
 * Balancing end to end: a real corral in front of fake Ollama fleets on 127.0.0.1. Slow and
 * failing instances get less work, a killed instance costs no request that had not started,
 * health checks take instances out and bring them back, models decide where requests go, and
 * the queue hands work to whichever instance frees first.
 */
import t, { type Test } from 'tap'
import type { HealthStateName } from '../../src/balancer/health-state.js'
import type { Corral } from '../../src/index.js'
import { startFakeOllama, type FakeOllama, type FakeOllamaOptions } from '../fixtures/fake-ollama.js'
import { startCorral } from '../fixtures/start-corral.js'
import { request } from 'undici'
import { ndjson, send } from '../fixtures/http.js'

const GENERATE = { model: 'llama3.2', prompt: 'Why is the sky blue?', stream: false }

async function fleet(t: Test, options: FakeOllamaOptions[]): Promise<FakeOllama[]> {
  const fakes = await Promise.all(options.map((o, i) => startFakeOllama({ name: `fake-${i}`, ...o })))
  t.teardown(() => Promise.all(fakes.map((f) => f.close())))
  return fakes
}

/** Resolves when instance `name` is in state `to` (at once if it already is). */
function stateChange(corral: Corral, name: string, to: HealthStateName): Promise<void> {
  const instance = corral.balancer.instances.find((i) => i.name === name)
  if (instance?.health.state(Date.now()) === to) return Promise.resolve()
  return new Promise((resolve) =>
    corral.balancer.onHealthChange((instance, _from, state) => {
      if (instance.name === name && state === to) resolve()
    }),
  )
}

t.test('a slow instance receives proportionally less', async (t) => {
  const [slow, fast] = await fleet(t, [{ tokenDelayMs: 30 }, { tokenDelayMs: 2 }])
  const { url } = await startCorral(t, [slow!.url, fast!.url])
  // Four clients in a closed loop, each sending its next request when the previous one is answered.
  const client = async (c: number): Promise<void> => {
    for (let i = 0; i < 12; i++) {
      const res = await send(url, 'POST', '/api/generate', { ...GENERATE, prompt: `c${c} q${i}` })
      if (res.status !== 200) throw new Error(`status ${res.status}`)
    }
  }
  await Promise.all([0, 1, 2, 3].map(client))
  const [s, f] = [slow!.count('/api/generate'), fast!.count('/api/generate')]
  t.equal(s + f, 48)
  t.ok(f >= 4 * s, `15x faster instance got ${f}, slow one ${s}`)
})

t.test('an instance answering fast 503s is avoided; no request fails', async (t) => {
  const [busy, good] = await fleet(t, [{}, {}])
  busy!.setDefault({ kind: 'status', status: 503 })
  const { url } = await startCorral(t, [busy!.url, good!.url])
  for (let i = 0; i < 20; i++) {
    t.equal((await send(url, 'POST', '/api/generate', { ...GENERATE, prompt: `q${i}` })).status, 200, `request ${i}`)
  }
  t.equal(busy!.count('/api/generate'), 1, 'after its first 503 the failure penalty keeps it out')
  t.equal(good!.count('/api/generate'), 20, 'every request was answered by the good instance')
})

t.test('an instance that keeps failing is ejected after eject_after failures in a row', async (t) => {
  const [busy, good] = await fleet(t, [{}, {}])
  busy!.setDefault({ kind: 'status', status: 503 })
  // A penalty that fades at once, so the score alone would keep offering the busy instance work.
  const { url, corral } = await startCorral(t, [busy!.url, good!.url], {
    balancer: { failure_penalty: 0, policy: 'round-robin' },
    health: { eject_after: 3 },
  })
  const ejected = stateChange(corral, 'i0', 'ejected')
  for (let i = 0; i < 12; i++) {
    t.equal((await send(url, 'POST', '/api/generate', { ...GENERATE, prompt: `q${i}` })).status, 200, `request ${i}`)
  }
  await ejected
  const stats = (await send(url, 'GET', '/api/load-balancer-stats')).json as { instances: { state: string; errors: number; ejections: number }[] }
  t.match(stats.instances[0], { state: 'ejected', errors: 3, ejections: 1, state_changes: 1 })
  t.equal(busy!.count('/api/generate'), 3, 'no traffic once ejected')
})

t.test('a killed instance costs no request that had not started streaming', async (t) => {
  const fakes = await fleet(t, [{ tokenDelayMs: 20 }, { tokenDelayMs: 20 }, { tokenDelayMs: 20 }])
  const { url, corral } = await startCorral(t, fakes.map((f) => f.url), { balancer: { policy: 'round-robin' } })
  const answers = Array.from({ length: 30 }, (_, i) => send(url, 'POST', '/api/generate', { ...GENERATE, prompt: `q${i}` }))
  const victim = fakes[1]!
  await victim.waitUntil((f) => f.inFlight >= 3)
  await victim.stop()
  const results = await Promise.all(answers)
  t.same(results.map((r) => r.status), results.map(() => 200), 'every non-streamed request was answered (retried elsewhere)')
  t.ok(results.every((r) => (r.json as { done?: boolean }).done === true))
  await corral.proxy.whenIdle()
  t.same(corral.balancer.instances.map((i) => i.inFlight), [0, 0, 0], 'no in-flight count leaked')
})

t.test('a stream already under way on a killed instance ends with an error line; the next request avoids it', async (t) => {
  const [a, b] = await fleet(t, [{ tokenDelayMs: 30, tokens: 40 }, { tokenDelayMs: 1 }])
  const { url } = await startCorral(t, [a!.url, b!.url], { balancer: { policy: 'round-robin' } })
  const res = await request(`${url}/api/generate`, { method: 'POST', body: JSON.stringify({ model: 'llama3.2', prompt: 'long' }) })
  let text = ''
  for await (const chunk of res.body) {
    // The first line is with the client: now the instance dies.
    if (text === '') await a!.stop()
    text += (chunk as Buffer).toString()
  }
  t.equal(a!.count('/api/generate'), 1, 'the stream came from the instance that died')
  const lines = ndjson(text)
  t.match(lines.at(-1), { error: /failed mid-response/ })
  for (let i = 0; i < 3; i++) t.equal((await send(url, 'POST', '/api/generate', GENERATE)).status, 200)
})

t.test('active health checks take an instance out and bring it back with slow start', async (t) => {
  const [a, b] = await fleet(t, [{}, {}])
  const { url, corral } = await startCorral(t, [a!.url, b!.url], {
    health: { interval: '1s', unhealthy_after: 1, healthy_after: 1 },
  })
  const down = stateChange(corral, 'i0', 'unhealthy')
  await a!.stop()
  await down
  for (let i = 0; i < 4; i++) t.equal((await send(url, 'POST', '/api/generate', { ...GENERATE, prompt: `q${i}` })).status, 200)
  t.equal(a!.count('/api/generate'), 0, 'an unhealthy instance gets no traffic')
  const up = stateChange(corral, 'i0', 'healthy')
  await a!.restart()
  await up
  const stats = (await send(url, 'GET', '/api/load-balancer-stats')).json as { instances: { state: string; weight_factor: number }[] }
  t.equal(stats.instances[0]!.state, 'healthy')
  t.ok(stats.instances[0]!.weight_factor < 1, `slow start: weight factor ${stats.instances[0]!.weight_factor}`)
})

t.test('model-aware routing: only instances with the model, loaded ones first', async (t) => {
  const [llama, qwen, both] = await fleet(t, [
    { models: [{ name: 'llama3.2' }], loaded: [] },
    { models: [{ name: 'qwen3:8b' }], loaded: [] },
    { models: [{ name: 'llama3.2' }, { name: 'qwen3:8b' }], loaded: ['llama3.2'] },
  ])
  const { url } = await startCorral(t, [llama!.url, qwen!.url, both!.url])
  for (let i = 0; i < 4; i++) {
    t.equal((await send(url, 'POST', '/api/generate', { model: 'qwen3:8b', prompt: `q${i}`, stream: false })).status, 200)
  }
  t.equal(llama!.count('/api/generate'), 0, 'the instance without qwen3 gets none of it')
  for (let i = 0; i < 3; i++) t.equal((await send(url, 'POST', '/api/show', { model: 'qwen3:8b' })).status, 200)
  t.equal(llama!.count('/api/show'), 0, '/api/show goes to an instance that has the model')
  t.equal(qwen!.count('/api/generate') + both!.count('/api/generate'), 4)
  for (let i = 0; i < 4; i++) t.equal((await send(url, 'POST', '/api/generate', { ...GENERATE, prompt: `l${i}` })).status, 200)
  t.equal(llama!.count('/api/generate'), 0, 'llama3.2 goes where it is loaded, not where it would load cold')
  const missing = await send(url, 'POST', '/api/generate', { model: 'nowhere', prompt: 'x', stream: false })
  t.equal(missing.status, 404, "a model no instance has still gets Ollama's own 404")
  t.match(missing.json, { error: /model "nowhere" not found/ })
})

t.test('every instance unhealthy: corral does not refuse, it goes round-robin', async (t) => {
  const fakes = await fleet(t, [{}, {}])
  for (const f of fakes) f.script({ kind: 'status', status: 500 }, { path: '/api/version', times: 1000 })
  const { url, corral } = await startCorral(t, fakes.map((f) => f.url), { health: { interval: '1s', unhealthy_after: 1 } })
  await Promise.all([stateChange(corral, 'i0', 'unhealthy'), stateChange(corral, 'i1', 'unhealthy')])
  for (let i = 0; i < 4; i++) t.equal((await send(url, 'POST', '/api/generate', { ...GENERATE, prompt: `q${i}` })).status, 200)
  t.same(fakes.map((f) => f.count('/api/generate')), [2, 2], 'round-robin over the unhealthy instances')
})

t.test('the queue hands work to whichever instance frees first', async (t) => {
  const [a, b] = await fleet(t, [{}, {}])
  const { url, corral } = await startCorral(t, [a!.url, b!.url], {
    instances: [
      { url: a!.url, name: 'i0', max_concurrency: 1 },
      { url: b!.url, name: 'i1', max_concurrency: 1 },
    ],
  })
  a!.script({ kind: 'delay-headers', ms: 1500 })
  b!.script({ kind: 'delay-headers', ms: 100 })
  const first = [send(url, 'POST', '/api/generate', { ...GENERATE, prompt: '1' }), send(url, 'POST', '/api/generate', { ...GENERATE, prompt: '2' })]
  await Promise.all([a!.waitForRequests(1, '/api/generate'), b!.waitForRequests(1, '/api/generate')])
  const third = send(url, 'POST', '/api/generate', { ...GENERATE, prompt: '3' })
  while (corral.balancer.queueDepth === 0) await new Promise((r) => setImmediate(r))
  const queued = ((await send(url, 'GET', '/api/load-balancer-stats')).json as { queue_depth: number }).queue_depth
  t.equal(queued, 1, 'the third request waits in corral, not at an instance')
  t.equal((await third).status, 200)
  t.equal(b!.count('/api/generate'), 2, 'it went to the instance that freed first')
  t.equal(a!.count('/api/generate'), 1)
  await Promise.all(first)
})

t.test('/api/load-balancer-stats reports every instance and the last minute', async (t) => {
  const fakes = await fleet(t, [{}, {}])
  const { url } = await startCorral(t, fakes.map((f) => f.url))
  for (let i = 0; i < 6; i++) await send(url, 'POST', '/api/generate', { ...GENERATE, prompt: `q${i}` })
  await send(url, 'POST', '/api/embed', { model: 'nomic-embed-text', input: 'x' })
  const stats = (await send(url, 'GET', '/api/load-balancer-stats')).json as Record<string, unknown> & { instances: Record<string, unknown>[] }
  t.match(stats, { strategy: 'load-score', requests: 7, errors: 0, requests_1m: 7, queue_depth: 0 })
  t.ok((stats.p50_ms_1m as number) > 0 && (stats.p95_ms_1m as number) >= (stats.p50_ms_1m as number))
  t.equal(stats.instances.length, 2)
  const sum = stats.instances.reduce((n, i) => n + (i.requests as number), 0)
  t.equal(sum, 7, 'per-instance requests add up')
  for (const i of stats.instances) {
    t.match(i, {
      name: String, url: String, state: 'healthy', weight: 1, in_flight: 0, queued: 0, score: Number,
      errors: 0, error_rate: 0, last_check: String, last_error: null,
      models: ['llama3.2:latest', 'nomic-embed-text:latest'], loaded_models: Array,
    })
  }
  const generated = stats.instances.filter((i) => (i.ewma_ms_per_token as number | null) !== null)
  t.ok(generated.length >= 1, 'ms per token learned from Ollama’s eval counts')
})

t.test('low load: 60 sequential chats over 3 equal instances, each takes a share', async (t) => {
  // Answers long enough (~130 ms) that the machine's scheduling noise does not decide.
  const fakes = await fleet(t, [{ tokenDelayMs: 16 }, { tokenDelayMs: 16 }, { tokenDelayMs: 16 }])
  const { url } = await startCorral(t, fakes.map((f) => f.url), { cache: { enabled: false } })
  for (let i = 0; i < 60; i++) {
    const res = await send(url, 'POST', '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: `q${i}` }], stream: false })
    t.equal(res.status, 200)
  }
  for (const f of fakes) {
    const share = f.count('/api/chat') / 60
    t.ok(share >= 0.2 && share <= 0.47, `${f.name}: ${f.count('/api/chat')} of 60`)
  }
})
