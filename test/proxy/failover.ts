/**
 * Failover before the first byte: a request goes to the next instance when the chosen one refuses,
 * resets, times out or answers a status in `proxy.retry_on` (503 busy; 500, 502, 504 on model
 * routes), POST included; never once the answer has started.
 */
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startBlackhole } from '../fixtures/blackhole.js'
import { RUNNER_TERMINATED_ERROR, startFakeOllama, type FakeOllama } from '../fixtures/fake-ollama.js'
import { configFromObject } from '../../src/config/load-config.js'
import type { Config } from '../../src/config/config.js'
import { startCorral } from '../fixtures/start-corral.js'
import { ndjson, send } from '../fixtures/http.js'

const GENERATE = { model: 'llama3.2', prompt: 'hello' }

async function fleet(t: Test, n: number, opts: Parameters<typeof startFakeOllama>[0] = {}): Promise<FakeOllama[]> {
  const fakes = await Promise.all(Array.from({ length: n }, () => startFakeOllama(opts)))
  t.teardown(() => Promise.all(fakes.map((f) => f.close())))
  return fakes
}

t.test('a refused connection fails over to the next instance', async (t) => {
  const [a, b] = await fleet(t, 2)
  const { url, logs } = await startCorral(t, [a!.url, b!.url])
  await a!.stop()
  const res = await send(url, 'POST', '/api/generate', { ...GENERATE, stream: false })
  t.equal(res.status, 200)
  t.match(res.json, { done: true, done_reason: 'stop' })
  t.equal(b!.count('/api/generate'), 1)
  t.ok(logs.some((l) => l.msg === 'attempt failed' && l.instance === 'i0' && l.kind === 'refused'), 'the failure is logged')
  t.ok(logs.some((l) => l.msg === 'request' && l.attempts === 2 && l.instance === 'i1' && l.status === 200))
})

t.test('a reset before any byte fails over, POST body re-sent intact', async (t) => {
  const [a, b] = await fleet(t, 2)
  const { url } = await startCorral(t, [a!.url, b!.url])
  a!.script({ kind: 'refuse' })
  const res = await send(url, 'POST', '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'same body' }] })
  t.equal(res.status, 200)
  t.equal(ndjson(res.text).at(-1)!.done, true)
  t.equal(a!.count('/api/chat'), 1, 'tried first')
  t.same(b!.requests.at(-1)!.body, { model: 'llama3.2', messages: [{ role: 'user', content: 'same body' }] }, 'same body')
})

t.test('a reset is retried on the same instance once: a lone instance with a stale connection still answers', async (t) => {
  const [a] = await fleet(t, 1)
  const { url, logs } = await startCorral(t, [a!.url])
  a!.script({ kind: 'refuse' })
  const res = await send(url, 'POST', '/api/generate', { ...GENERATE, stream: false })
  t.equal(res.status, 200)
  t.equal(a!.count('/api/generate'), 2)
  t.ok(logs.some((l) => l.msg === 'request' && l.attempts === 2 && l.status === 200))
  a!.script({ kind: 'refuse' }, { times: 2 })
  const twice = await send(url, 'POST', '/api/generate', GENERATE)
  t.equal(twice.status, 502, 'but not forever')
  t.match(twice.json, { error: /all 2 attempts failed \(i0: connection reset; i0: connection reset\)/ })
})

t.test("Ollama's 503 server busy fails over", async (t) => {
  const [a, b] = await fleet(t, 2)
  const { url, corral } = await startCorral(t, [a!.url, b!.url])
  a!.script({ kind: 'status', status: 503 })
  const res = await send(url, 'POST', '/api/embed', { model: 'nomic-embed-text', input: 'x' })
  t.equal(res.status, 200)
  t.equal(b!.count('/api/embed'), 1)
  const [i0, i1] = corral.balancer.instances
  t.equal(i0!.failures, 1, 'the busy answer counts against the instance')
  t.match(i0!.lastError, /^503 server busy/)
  t.equal(i1!.failures, 0)
})

t.test('no response before the first-byte timeout fails over; the stalled request is cancelled', async (t) => {
  const [a, b] = await fleet(t, 2)
  const { url } = await startCorral(t, [a!.url, b!.url], { proxy: { first_byte_timeout: '300ms' } })
  a!.script({ kind: 'hang' })
  const res = await send(url, 'POST', '/api/generate', { ...GENERATE, stream: false })
  t.equal(res.status, 200)
  t.equal(b!.count('/api/generate'), 1)
  await a!.waitForClosedEarly(1)
  t.equal(a!.inFlight, 0, 'the hung instance was let go')
})

t.test('a connect timeout (an instance that is down or firewalled) fails over', async (t) => {
  const hole = await startBlackhole()
  t.teardown(() => hole.close())
  const [b] = await fleet(t, 1)
  const { url, logs } = await startCorral(t, [hole.url, b!.url], { proxy: { connect_timeout: '300ms' } })
  const res = await send(url, 'POST', '/api/generate', { ...GENERATE, stream: false })
  t.equal(res.status, 200)
  t.equal(b!.count('/api/generate'), 1)
  t.ok(logs.some((l) => l.msg === 'attempt failed' && l.instance === 'i0' && l.kind === 'connect_timeout'), 'logged as a connect timeout')
})

t.test('every instance unreachable in time gives 504', async (t) => {
  const holes = await Promise.all([startBlackhole(), startBlackhole()])
  t.teardown(() => Promise.all(holes.map((h) => h.close())))
  const { url } = await startCorral(t, holes.map((h) => h.url), { proxy: { connect_timeout: '200ms' } })
  const res = await send(url, 'POST', '/api/embed', { model: 'nomic-embed-text', input: 'x' })
  t.equal(res.status, 504)
  t.same(res.json, { error: 'upstream timeout: all 2 attempts failed (i0: connect timeout; i1: connect timeout)' })
})

t.test('every instance failing gives 502 naming what happened at each', async (t) => {
  const [a, b] = await fleet(t, 2)
  const { url } = await startCorral(t, [a!.url, b!.url])
  await a!.stop()
  b!.setDefault({ kind: 'refuse' })
  const res = await send(url, 'POST', '/api/generate', GENERATE)
  t.equal(res.status, 502)
  t.match(res.headers['content-type'], /application\/json/)
  t.match(res.json, {
    error: /^no instance could answer: all 3 attempts failed \(i0: connection refused; i1: connection reset; i1: connection reset\)$/,
  })
})

t.test('every instance timing out gives 504', async (t) => {
  const [a, b] = await fleet(t, 2)
  const { url } = await startCorral(t, [a!.url, b!.url], { proxy: { first_byte_timeout: '200ms' } })
  a!.setDefault({ kind: 'hang' })
  b!.setDefault({ kind: 'hang' })
  const res = await send(url, 'POST', '/api/generate', GENERATE)
  t.equal(res.status, 504)
  t.match(res.json, { error: /upstream timeout: all 2 attempts failed \(i0: no response before the first-byte timeout; i1: / })
})

t.test('a lone busy instance: 503 with Retry-After and Ollama\'s reason', async (t) => {
  const [a] = await fleet(t, 1)
  const { url } = await startCorral(t, [a!.url])
  a!.script({ kind: 'status', status: 503 })
  const res = await send(url, 'POST', '/api/generate', GENERATE)
  t.equal(res.status, 503)
  t.equal(res.headers['retry-after'], '1')
  t.match(res.json, { error: /server busy, please try again.*maximum pending requests exceeded/ })
})

t.test('attempts are bounded by max_attempts', async (t) => {
  const fakes = await fleet(t, 3)
  const { url } = await startCorral(t, fakes.map((f) => f.url), { proxy: { max_attempts: 2 } })
  for (const f of fakes) f.setDefault({ kind: 'refuse' })
  const res = await send(url, 'POST', '/api/generate', GENERATE)
  t.equal(res.status, 502)
  t.match(res.json, { error: /all 2 attempts failed/ })
  t.equal(fakes.reduce((n, f) => n + f.count(), 0), 2, 'two instances tried, not three')
})

t.test('an answer that dies mid-stream is not retried and ends with an error line', async (t) => {
  const [a, b] = await fleet(t, 2)
  const { url, logs, corral } = await startCorral(t, [a!.url, b!.url])
  a!.script({ kind: 'die-after-chunks', chunks: 3 })
  const res = await send(url, 'POST', '/api/generate', GENERATE)
  t.equal(res.status, 200, 'the status had already gone out')
  const lines = ndjson(res.text)
  t.equal(lines.length, 4, 'three chunks, then the error line')
  t.same(lines.slice(0, 3).map((l) => l.done), [false, false, false])
  t.match(lines[3], { error: /^upstream i0 failed mid-response: / })
  t.equal(b!.count(), 0, 'nothing re-sent: the client already had part of the answer')
  t.equal(corral.balancer.instances[0]!.failures, 1, 'counted once')
  t.ok(logs.some((l) => l.msg === 'request' && typeof l.err === 'string'), 'logged as failed')
})

t.test('an SSE stream that dies ends with an error event', async (t) => {
  const [a] = await fleet(t, 1)
  const { url } = await startCorral(t, [a!.url])
  a!.script({ kind: 'die-after-chunks', chunks: 2 })
  const res = await send(url, 'POST', '/v1/chat/completions', { model: 'llama3.2', messages: [{ role: 'user', content: 'x' }], stream: true })
  const events = res.text.split('\n\n').filter(Boolean)
  t.equal(events.length, 3)
  t.match(JSON.parse(events[2]!.replace(/^data: /, '')), { error: { message: /failed mid-response/, type: 'api_error' } })
})

t.test('a non-streamed answer that dies is cut, never a silently complete 200', async (t) => {
  const [a] = await fleet(t, 1)
  const { url } = await startCorral(t, [a!.url])
  a!.script({ kind: 'die-after-chunks', chunks: 1 })
  const res = await request(`${url}/api/generate`, { method: 'POST', body: JSON.stringify({ ...GENERATE, stream: false }) })
  t.equal(res.statusCode, 200)
  await t.rejects(res.body.text(), 'the client sees a broken body')
})

t.test('a stream stalled past the idle timeout ends with an error line', async (t) => {
  const [a] = await fleet(t, 1)
  const { url } = await startCorral(t, [a!.url], { proxy: { idle_timeout: '150ms' } })
  a!.script({ kind: 'slow', tokenDelayMs: 2000 })
  const res = await send(url, 'POST', '/api/generate', GENERATE)
  const lines = ndjson(res.text)
  t.match(lines.at(-1), { error: /stalled past the idle timeout/ })
  await a!.waitForClosedEarly(1)
})

t.test('blob uploads stream and are not retried', async (t) => {
  const [a, b] = await fleet(t, 2)
  const { url } = await startCorral(t, [a!.url, b!.url])
  await a!.stop()
  const res = await send(url, 'POST', `/api/blobs/sha256:${'a'.repeat(64)}`, Buffer.alloc(1024), { 'content-type': 'application/octet-stream' })
  t.equal(res.status, 502)
  t.match(res.json, { error: /the only attempt failed \(i0: connection refused\)/ })
  t.equal(b!.count(), 0)
  await b!.stop()
  const big = await send(url, 'POST', `/api/blobs/sha256:${'b'.repeat(64)}`, Buffer.alloc(8 * 1024 * 1024), { 'content-type': 'application/octet-stream' })
  t.equal(big.status, 502)
  t.equal(big.headers.connection, 'close', 'an upload left unread is not read just to keep the connection')
})

t.test('every instance at max_concurrency and the queue full: 503 with Retry-After, nothing sent', async (t) => {
  const [a] = await fleet(t, 1)
  const { url, corral } = await startCorral(t, [a!.url], {
    instances: [{ url: a!.url, name: 'i0', max_concurrency: 1 }],
    balancer: { max_queue: 0 },
  })
  a!.script({ kind: 'hang' })
  const controller = new AbortController()
  const first = request(`${url}/api/generate`, { method: 'POST', body: JSON.stringify(GENERATE), signal: controller.signal })
  await a!.waitForRequests(1)
  const res = await send(url, 'POST', '/api/generate', GENERATE)
  t.equal(res.status, 503)
  t.equal(res.headers['retry-after'], '1')
  t.match(res.json, { error: /every instance is at its concurrency limit and the queue is full \(0 waiting\)/ })
  t.equal(a!.count(), 1)
  controller.abort()
  await t.rejects(first)
  await corral.proxy.whenIdle()
  t.equal(corral.balancer.instances[0]!.inFlight, 0, 'the slot is released')
})

/** Every model route, streamed and not, with a body that asks for it. */
const MODEL_ROUTES: readonly { path: string; body: Record<string, unknown> }[] = [
  { path: '/api/generate', body: { model: 'llama3.2', prompt: 'x', stream: false } },
  { path: '/api/generate', body: { model: 'llama3.2', prompt: 'x' } },
  { path: '/api/chat', body: { model: 'llama3.2', messages: [{ role: 'user', content: 'x' }], stream: false } },
  { path: '/api/chat', body: { model: 'llama3.2', messages: [{ role: 'user', content: 'x' }] } },
  { path: '/api/embed', body: { model: 'nomic-embed-text', input: 'x' } },
  { path: '/api/embeddings', body: { model: 'nomic-embed-text', prompt: 'x' } },
  { path: '/v1/chat/completions', body: { model: 'llama3.2', messages: [{ role: 'user', content: 'x' }] } },
  { path: '/v1/chat/completions', body: { model: 'llama3.2', messages: [{ role: 'user', content: 'x' }], stream: true } },
  { path: '/v1/completions', body: { model: 'llama3.2', prompt: 'x' } },
  { path: '/v1/completions', body: { model: 'llama3.2', prompt: 'x', stream: true } },
  { path: '/v1/embeddings', body: { model: 'nomic-embed-text', input: 'x' } },
]

t.test('a 500 before any byte fails over on every model route, streamed or not, and counts against the instance', async (t) => {
  const [a, b] = await fleet(t, 2)
  // Round-robin: of two requests per route, one goes to the broken instance first.
  const { url, corral } = await startCorral(t, [a!.url, b!.url], { cache: { enabled: false }, balancer: { policy: 'round-robin' }, health: { eject_after: 100 } })
  for (const { path, body } of MODEL_ROUTES) {
    const label = `${path} stream=${JSON.stringify(body.stream) ?? 'default'}`
    const before = { a: a!.count(path), b: b!.count(path) }
    a!.script({ kind: 'status', status: 500, error: RUNNER_TERMINATED_ERROR }, { path, times: 2 })
    for (let i = 0; i < 2; i++) {
      const res = await send(url, 'POST', path, body)
      t.equal(res.status, 200, label)
      t.notOk(res.text.includes(RUNNER_TERMINATED_ERROR), `${label}: the 500 never reaches the client`)
    }
    t.ok(a!.count(path) - before.a >= 1, `${label}: the broken instance was tried`)
    t.equal(b!.count(path) - before.b, 2, `${label}: both answered by the other instance`)
    a!.clearScripts()
  }
  const [i0, i1] = corral.balancer.instances
  t.equal(i0!.failures, a!.requests.length, 'every 500 counts against the instance that answered it')
  t.match(i0!.lastError, /^500 llama runner process has terminated/)
  t.equal(i1!.failures, 0)
})

t.test('a 500 fails over only while it is in proxy.retry_on, which a reload changes', async (t) => {
  const [a, b] = await fleet(t, 2)
  const { url, corral } = await startCorral(t, [a!.url, b!.url], { balancer: { policy: 'round-robin' } })
  const configWith = (retryOn: number[]): Config =>
    configFromObject({
      listen: '127.0.0.1:0',
      log: { level: 'info' },
      instances: [{ url: a!.url, name: 'i0' }, { url: b!.url, name: 'i1' }],
      balancer: { policy: 'round-robin' },
      proxy: { retry_on: retryOn },
    }).config
  const result = corral.reload(configWith([502, 503, 504]))
  t.equal(result.status, 'reloaded')
  t.same(corral.config.proxy.retryOn, [502, 503, 504])
  a!.setDefault({ kind: 'status', status: 500, error: RUNNER_TERMINATED_ERROR })
  b!.setDefault({ kind: 'status', status: 500, error: RUNNER_TERMINATED_ERROR })
  const relayed = await send(url, 'POST', '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'x' }] })
  t.equal(relayed.status, 500, 'not in retry_on: relayed as the instance answered')
  t.same(relayed.json, { error: RUNNER_TERMINATED_ERROR })
  t.equal(a!.count('/api/chat') + b!.count('/api/chat'), 1, 'one attempt')
  corral.reload(configWith([500]))
  const failed = await send(url, 'POST', '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'x' }] })
  t.equal(failed.status, 500, 'every instance answered 500: the client gets a 500')
  t.match(failed.headers['content-type'], /application\/json/)
  t.same(failed.json, { error: RUNNER_TERMINATED_ERROR }, 'the same error everywhere: as one Ollama would answer it')
  t.equal(a!.count('/api/chat') + b!.count('/api/chat'), 3, 'both instances tried')
  const openai = await send(url, 'POST', '/v1/embeddings', { model: 'nomic-embed-text', input: 'x' })
  t.equal(openai.status, 500)
  t.match(openai.json, { error: { message: RUNNER_TERMINATED_ERROR, type: 'api_error' } }, 'OpenAI shape on /v1')
  b!.setDefault({ kind: 'status', status: 500, error: 'out of memory' })
  const mixed = await send(url, 'POST', '/api/embed', { model: 'nomic-embed-text', input: 'y' })
  t.equal(mixed.status, 500, 'the same status with different messages: that status...')
  t.match(mixed.json, { error: /: all 2 attempts failed \(i\d: 500 .*; i\d: 500 / }, '...and what each instance said')
})

t.test('model management keeps its own rules: a 500 on a non-model route is relayed', async (t) => {
  const [a, b] = await fleet(t, 2)
  const { url } = await startCorral(t, [a!.url, b!.url], { balancer: { policy: 'round-robin' } })
  a!.script({ kind: 'status', status: 500 }, { path: '/api/show' })
  b!.script({ kind: 'status', status: 500 }, { path: '/api/show' })
  const res = await send(url, 'POST', '/api/show', { model: 'llama3.2' })
  t.equal(res.status, 500)
  t.equal(a!.count('/api/show') + b!.count('/api/show'), 1, 'not retried')
})

t.test('one instance answering 500 to a burst of concurrent chats: no client sees it, and the instance is ejected', async (t) => {
  const fakes = await fleet(t, 3)
  const { url, corral } = await startCorral(t, fakes.map((f) => f.url), { health: { eject_after: 2 } })
  fakes[0]!.script({ kind: 'status', status: 500, error: RUNNER_TERMINATED_ERROR }, { path: '/api/chat', times: 1000 })
  const results = await Promise.all(
    Array.from({ length: 60 }, () => send(url, 'POST', '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'x' }], stream: false })),
  )
  t.same(results.filter((r) => r.status !== 200).map((r) => r.status), [], 'every client got an answer')
  const broken = corral.balancer.instances[0]!
  t.ok(fakes[0]!.count('/api/chat') >= 1, 'the broken instance was tried')
  if (fakes[0]!.count('/api/chat') >= 2) t.ok(broken.ejections >= 1, 'ejected after eject_after failures')
})
