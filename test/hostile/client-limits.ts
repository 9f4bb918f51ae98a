/**
 * server.max_requests_per_client and server.max_connections: a client over its share is told
 * 429 (or its connection is closed), every slot comes back however a request ends, and other
 * clients never notice.
 */
import { once } from 'node:events'
import type { Socket } from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { startCorral } from '../fixtures/start-corral.js'
import { ndjson, send } from '../fixtures/http.js'
import { openSession } from '../fixtures/raw-session.js'

const generate = (url: string, prompt: string, headers: Record<string, string> = {}) =>
  request(`${url}/api/generate`, { method: 'POST', headers, body: JSON.stringify({ model: 'llama3.2', prompt }) })

t.test('a client over max_requests_per_client gets 429 with Retry-After; probes and other clients do not', async (t) => {
  const fake = await startFakeOllama({ tokenDelayMs: 20, tokens: 30 })
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url], { server: { max_requests_per_client: 2 } })
  const streams = await Promise.all([generate(url, 'a'), generate(url, 'b')])
  const third = await send(url, 'POST', '/api/generate', { model: 'llama3.2', prompt: 'c' })
  t.equal(third.status, 429)
  t.equal(third.headers['retry-after'], '1')
  t.same(third.json, { error: 'too many requests in flight from this client (limit 2)' })
  const openai = await send(url, 'POST', '/v1/chat/completions', { model: 'llama3.2', messages: [] })
  t.equal(openai.status, 429)
  t.match(openai.json, { error: { message: /too many requests in flight/, type: 'invalid_request_error' } }, 'OpenAI shape on /v1')
  t.equal((await send(url, 'GET', '/healthz')).status, 200, 'probes are not counted')
  t.equal(corral.perClient.inFlight, 2)
  for (const s of streams) t.equal(ndjson(await s.body.text()).at(-1)!.done, true, 'the two in flight finish whole')
  await corral.perClient.whenInFlightAtMost(0)
  t.equal((await send(url, 'POST', '/api/generate', { model: 'llama3.2', prompt: 'd', stream: false })).status, 200, 'room again')
  t.equal(fake.count('/api/generate'), 3, 'refused requests never reached the instance')
})

t.test('behind a trusted proxy the limit is per X-Forwarded-For client, not per proxy', async (t) => {
  const fake = await startFakeOllama({ tokenDelayMs: 20, tokens: 30 })
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url], { server: { max_requests_per_client: 1, trust_proxy: true } })
  const [a, b] = await Promise.all([generate(url, 'a', { 'x-forwarded-for': '1.1.1.1' }), generate(url, 'b', { 'x-forwarded-for': '2.2.2.2' })])
  t.equal(a.statusCode, 200)
  t.equal(b.statusCode, 200, 'another client behind the same proxy')
  const again = await send(url, 'POST', '/api/generate', { model: 'llama3.2', prompt: 'c' }, { 'x-forwarded-for': '1.1.1.1' })
  t.equal(again.status, 429, 'the same client twice')
  await Promise.all([a.body.text(), b.body.text()])
  await corral.perClient.whenInFlightAtMost(0)
  t.equal(corral.perClient.clients, 0)
})

t.test('no slot leaks: aborted streams, aborted uploads, failed and refused requests all give theirs back', async (t) => {
  const fake = await startFakeOllama({ tokenDelayMs: 10, tokens: 50, numParallel: 2 })
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url], {
    server: { max_requests_per_client: 100 },
    limits: { max_body_size: { generation: '1KiB' } },
    instances: [{ url: fake.url, name: 'i0', max_concurrency: 2 }],
  })
  const outcomes: Promise<unknown>[] = []
  // Streams cut by the client at once, after a few chunks, and while queued behind a busy instance.
  for (let i = 0; i < 12; i++) {
    const controller = new AbortController()
    const res = request(`${url}/api/generate`, { method: 'POST', body: JSON.stringify({ model: 'llama3.2', prompt: `p${i}` }), signal: controller.signal })
    outcomes.push(
      res.then(async (r) => {
        if (i % 3 === 0) return controller.abort()
        for await (const _chunk of r.body) {
          controller.abort()
          break
        }
      }).catch(() => undefined),
    )
    if (i % 3 === 2) controller.abort()
  }
  // A body that never completes, then the client goes away.
  const session = await openSession(url)
  session.socket.write('POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"model":')
  // Refused locally: bad JSON, too large; and an instance error.
  outcomes.push(send(url, 'POST', '/api/chat', '{"model":'), send(url, 'POST', '/api/generate', 'x'.repeat(5000)))
  fake.script({ kind: 'status', status: 500, error: 'boom' }, { path: '/api/show' })
  outcomes.push(send(url, 'POST', '/api/show', { model: 'llama3.2' }))
  await Promise.all(outcomes)
  session.socket.destroy()
  await corral.perClient.whenInFlightAtMost(0)
  t.equal(corral.perClient.inFlight, 0, 'every slot came back')
  t.equal(corral.perClient.clients, 0, 'and no client entry is left')
  await corral.proxy.whenIdle()
  t.equal(corral.proxy.active, 0)
})

t.test('max_connections: a connection beyond it is closed at once; freed room is usable again', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, corral, logs } = await startCorral(t, [fake.url], { server: { max_connections: 2 } })
  const accepted: Socket[] = []
  corral.server.on('connection', (s: Socket) => accepted.push(s))
  // Two keep-alive connections, each proven accepted by a full exchange.
  const held = await Promise.all([openSession(url), openSession(url)])
  for (const s of held) {
    s.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    await once(s.socket, 'data')
  }
  const third = await openSession(url)
  third.socket.write('GET /api/version HTTP/1.1\r\nHost: x\r\n\r\n')
  const { text, open } = await third.closed()
  t.equal(open, false, 'closed by corral')
  t.equal(text, '', 'without an answer: nothing was read')
  t.ok(logs.some((l) => l.msg === 'connections over server.max_connections closed' && l.max_connections === 2), 'logged')
  t.equal(accepted.length, 2)
  held[0].socket.destroy()
  await once(accepted[0]!, 'close')
  t.equal((await send(url, 'GET', '/api/version')).status, 200, 'a freed connection slot is taken again')
  held[1].socket.destroy()
  t.equal(fake.count('/api/version'), 1)
})
