/**
 * Failover before the first byte: a request goes to the next instance when the chosen one refuses,
 * resets, times out or answers 503 busy, POST included; never once the answer has started.
 */
import t, { type Test } from 'tap'
import { request } from 'undici'
import { startBlackhole } from '../fixtures/blackhole.js'
import { startFakeOllama, type FakeOllama } from '../fixtures/fake-ollama.js'
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
