/**
 * Only configured instances are ever contacted, with a normalised path: an "evil" server on
 * 127.0.0.1 stands for every other host a request could try to reach, and must see nothing.
 */
import { createServer } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { startCorral } from '../fixtures/start-corral.js'
import { rawExchange, send } from '../fixtures/http.js'

async function startEvil(t: Test): Promise<{ authority: string; hits: string[] }> {
  const hits: string[] = []
  const server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`)
    res.end('{"pwned":true}')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { authority: `127.0.0.1:${(server.address() as AddressInfo).port}`, hits }
}

const statusOf = (raw: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(raw)?.[1] ?? 0)
const bodyOf = (raw: string): unknown => JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4))

t.test('no request target, Host header or @ trick makes corral contact another host', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const evil = await startEvil(t)
  const { url } = await startCorral(t, [fake.url])
  const e = evil.authority
  const forwarded: [string, string][] = [
    [`GET http://${e}/api/version HTTP/1.1\r\nHost: ${e}`, '/api/version'],
    [`GET /api/version HTTP/1.1\r\nHost: ${e}`, '/api/version'],
    [`GET http://corral@${e}/api/version HTTP/1.1\r\nHost: x`, '/api/version'],
    [`GET http://${e}@127.0.0.1/api/version HTTP/1.1\r\nHost: x`, '/api/version'],
    [`GET //${e}/api/version HTTP/1.1\r\nHost: x`, `/${e}/api/version`],
    [`GET /api/version HTTP/1.1\r\nHost: x\r\nX-Forwarded-Host: ${e}\r\nForwarded: host=${e}`, '/api/version'],
    [`POST /api/x/../show HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 21`, '/api/show'],
    [`GET /%61pi/version HTTP/1.1\r\nHost: x`, '/api/version'],
    [`GET /api\\..\\api\\version HTTP/1.1\r\nHost: x`, '/api/version'],
  ]
  for (const [head, path] of forwarded) {
    const before = fake.count()
    const raw = await rawExchange(url, head, head.startsWith('POST') ? '{"model":"llama3.2"} ' : '')
    t.ok(statusOf(raw) > 0 && statusOf(raw) !== 502, `${head.split('\r\n')[0]}: answered (${statusOf(raw)})`)
    t.equal(fake.count(), before + 1, 'reached the configured instance')
    const seen = fake.requests.at(-1)!
    t.equal(seen.path, path, 'with the normalised path')
    t.equal(seen.headers.host, `127.0.0.1:${fake.port}`, "with the instance's own Host")
    t.equal(seen.headers['x-forwarded-host'], /\r\nHost: ([^\r]+)/.exec(head)![1], 'X-Forwarded-Host is the Host the client sent, never its own claim')
    t.notOk(seen.headers.forwarded, 'Forwarded from an untrusted client is dropped')
  }
  const refused: [string, number][] = [
    [`GET /api/../../${e}/x HTTP/1.1\r\nHost: x`, 400],
    [`GET /%2e%2e/%2e%2e/x HTTP/1.1\r\nHost: x`, 400],
    [`GET @${e}/x HTTP/1.1\r\nHost: x`, 400],
    [`GET ${e} HTTP/1.1\r\nHost: x`, 400],
    [`OPTIONS * HTTP/1.1\r\nHost: x`, 400],
    [`TRACE / HTTP/1.1\r\nHost: x`, 405],
    [`PROPFIND /api/tags HTTP/1.1\r\nHost: x`, 405],
  ]
  const before = fake.count()
  for (const [head, status] of refused) {
    const raw = await rawExchange(url, head)
    t.equal(statusOf(raw), status, head.split('\r\n')[0]!)
    t.match(bodyOf(raw), { error: String }, "in Ollama's shape")
  }
  t.equal(fake.count(), before, 'nothing refused reached the instance')
  t.same(evil.hits, [], 'the evil server saw nothing')
})

t.test('CONNECT is refused with 405 and the connection closed: corral is no tunnel', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const evil = await startEvil(t)
  const { url } = await startCorral(t, [fake.url])
  const raw = await rawExchange(url, `CONNECT ${evil.authority} HTTP/1.1\r\nHost: ${evil.authority}`, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
  t.equal(statusOf(raw), 405)
  t.match(raw, /\r\nAllow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n/)
  t.same(bodyOf(raw), { error: 'method CONNECT is not allowed' })
  t.same(evil.hits, [])
  t.equal(fake.count(), 0)
})

t.test('a 405 on a /v1 path is in OpenAI shape; the route still works with its own method', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, logs } = await startCorral(t, [fake.url])
  const raw = await rawExchange(url, 'TRACE /v1/models HTTP/1.1\r\nHost: x')
  t.equal(statusOf(raw), 405)
  t.same(bodyOf(raw), { error: { message: 'method TRACE is not allowed', type: 'invalid_request_error', param: null, code: null } })
  t.ok(logs.some((l) => l.msg === 'refused' && l.status === 405 && l.method === 'TRACE' && l.path === '/v1/models'), 'logged')
  t.equal((await send(url, 'GET', '/v1/models')).status, 200)
})

t.test('X-Forwarded-* from a client is replaced unless it is a trusted proxy, which is appended to', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const claims = { 'x-forwarded-for': '6.6.6.6', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'bank.example', 'x-real-ip': '6.6.6.6' }
  const untrusted = await startCorral(t, [fake.url])
  await send(untrusted.url, 'GET', '/api/version', undefined, claims)
  const { host } = new URL(untrusted.url)
  t.match(fake.requests.at(-1)!.headers, { 'x-forwarded-for': '127.0.0.1', 'x-forwarded-proto': 'http', 'x-forwarded-host': host })
  t.notOk(fake.requests.at(-1)!.headers['x-real-ip'])
  const trusted = await startCorral(t, [fake.url], { server: { trust_proxy: ['127.0.0.1/32'] } })
  await send(trusted.url, 'GET', '/api/version', undefined, claims)
  t.match(fake.requests.at(-1)!.headers, {
    'x-forwarded-for': '6.6.6.6, 127.0.0.1',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'bank.example',
    'x-real-ip': '6.6.6.6',
  })
})
