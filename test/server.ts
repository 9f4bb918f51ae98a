/**
 * The HTTP server: probes, hardening against slow and malformed clients, graceful drain.
 */
import t from 'tap'
import { request } from 'undici'
import { startFakeOllama } from './fixtures/fake-ollama.js'
import { startCorral } from './fixtures/start-corral.js'
import { ndjson, rawExchange, send } from './fixtures/http.js'
import { connect } from 'node:net'
import { openSession } from './fixtures/raw-session.js'

t.test('/healthz is always 200; /readyz needs one reachable instance', async (t) => {
  const a = await startFakeOllama()
  const b = await startFakeOllama()
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const { url } = await startCorral(t, [a.url, b.url])
  t.same((await send(url, 'GET', '/healthz')).json, { status: 'ok' })
  await a.stop()
  const ready = await send(url, 'GET', '/readyz')
  t.equal(ready.status, 200)
  t.match(ready.json, { status: 'ready', instances: [{ name: 'i0', reachable: false, error: 'ECONNREFUSED' }, { name: 'i1', reachable: true }] })
  await b.stop()
  const { url: url2 } = await startCorral(t, [a.url, b.url]) // a fresh corral: no cached answer
  const down = await send(url2, 'GET', '/readyz')
  t.equal(down.status, 503)
  t.match(down.json, { status: 'unavailable' })
  t.equal((await send(url2, 'GET', '/healthz')).status, 200, 'alive even with no instance')
})

t.test('a slowloris client is answered 408 and dropped', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], { server: { headers_timeout: '500ms' } })
  const { port } = new URL(url)
  const answer = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1')
    let out = ''
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => (out += d))
    socket.on('close', () => resolve(out))
    socket.on('error', reject)
    socket.write('POST /api/generate HTTP/1.1\r\nHost: x\r\n') // and never the rest
  })
  t.match(answer, /^HTTP\/1\.1 408 /)
  t.match(answer, /\{"error":"request not received in time"\}$/)
})

t.test('oversized headers: 431 in Ollama shape', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], { server: { max_header_size: '4KiB' } })
  const raw = await rawExchange(url, `GET /api/tags HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(8000)}`)
  t.match(raw, /^HTTP\/1\.1 431 /)
  t.match(raw, /\{"error":"request headers are too large"\}$/)
  t.equal(fake.count(), 0)
})

t.test('malformed HTTP and smuggling attempts are refused', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url])
  const both = await rawExchange(url, 'POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked', '0\r\n\r\n')
  t.match(both, /^HTTP\/1\.1 400 /, 'Content-Length with Transfer-Encoding')
  const twice = await rawExchange(url, 'POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 9', '{}')
  t.match(twice, /^HTTP\/1\.1 400 /, 'duplicate Content-Length')
  t.match(twice, /\{"error":"malformed request: /)
  t.equal(fake.count(), 0, 'nothing reached the instance')
})

t.test('graceful drain: streams in flight finish, new connections are refused', async (t) => {
  const fake = await startFakeOllama({ tokenDelayMs: 30, tokens: 20 })
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url])
  const res = await request(`${url}/api/generate`, { method: 'POST', body: JSON.stringify({ model: 'llama3.2', prompt: 'drain' }) })
  const body = res.body.text()
  const closed = corral.close(10_000)
  await t.rejects(send(url, 'GET', '/api/tags'), { code: 'ECONNREFUSED' }, 'no new connections while draining')
  const lines = ndjson(await body)
  t.equal(lines.length, 21, 'the stream in flight finished')
  t.equal(lines.at(-1)!.done, true)
  await closed
  t.equal(corral.proxy.active, 0)
})

t.test('drain timeout: what is still running after it is cut', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, corral, logs } = await startCorral(t, [fake.url])
  fake.script({ kind: 'hang' })
  const outcome = request(`${url}/api/generate`, { method: 'POST', body: '{"model":"llama3.2","prompt":"x"}' }).then(
    () => 'answered',
    (err: { code?: string }) => err.code,
  )
  await fake.waitForRequests(1)
  await corral.close(200)
  t.equal(await outcome, 'UND_ERR_SOCKET', 'the hung request is cut')
  t.ok(logs.some((l) => l.msg.startsWith('drain timeout')), 'logged')
  await fake.waitForClosedEarly(1)
})

t.test('a server error after listening (an accept failure) is logged and corral keeps serving', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, corral, logs } = await startCorral(t, [fake.url])
  const err = Object.assign(new Error('accept EMFILE'), { code: 'EMFILE' })
  t.doesNotThrow(() => corral.server.emit('error', err))
  t.ok(logs.some((l) => l.msg === 'server error' && l.level === 'error'))
  t.equal((await send(url, 'GET', '/api/version')).status, 200)
})

t.test('a body dribbled past request_timeout is answered 408 and the per-client slot comes back', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url], {
    server: { headers_timeout: '500ms', request_timeout: '1s', max_requests_per_client: 4 },
  })
  const session = await openSession(url)
  session.socket.write('POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"mo')
  const { text, open } = await session.closed(10_000)
  t.match(text, /^HTTP\/1\.1 408 /)
  t.match(text, /\{"error":"request not received in time"\}$/)
  t.equal(open, false)
  await corral.perClient.whenInFlightAtMost(0)
  t.equal(corral.perClient.clients, 0)
  t.equal(fake.count(), 0)
})
