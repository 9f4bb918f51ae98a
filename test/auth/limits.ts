/**
 * Per-key limits in memory, against a real corral: requests per minute (429 with Retry-After,
 * then the next minute lets them through again), requests in flight (streams held open count,
 * a client that leaves mid-stream or before any answer frees its slot), per-key overrides, and
 * a reconfigure that swaps keys and limits while keeping the live counts.
 */
import t from 'tap'
import { request } from 'undici'
import { configFromObject } from '../../src/config/load-config.js'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { startCorral } from '../fixtures/start-corral.js'

const APP = 'app-key-1d4f7a0c3e6b9258'
const OPS = 'ops-key-8e2b5d9f1a4c7063'
const NEW = 'new-key-3c6f9b2e5a8d1047'
const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` })

/** Opens a generation stream and resolves once its first chunk arrived; `abort` leaves mid-stream. */
async function openStream(url: string, key: string): Promise<{ abort: () => void; status: number }> {
  const controller = new AbortController()
  const res = await request(`${url}/api/generate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...bearer(key) },
    body: JSON.stringify({ model: 'llama3.2', prompt: 'a long story', stream: true }),
    signal: controller.signal,
  })
  const body = res.body
  body.on('error', () => {}) // the abort surfaces here
  if (res.statusCode === 200) await new Promise((resolve) => body.once('data', resolve))
  else await body.text()
  return { abort: () => controller.abort(), status: res.statusCode }
}

t.test('requests per minute: 429 with Retry-After in the minute, served again in the next', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  let now = Date.UTC(2026, 0, 1, 12, 0, 15) // 45 s before the minute ends
  const { url, corral, logs } = await startCorral(
    t,
    [fake.url],
    {
      auth: {
        enabled: true,
        limits: { rpm: 3 },
        keys: [
          { name: 'app', key: APP },
          { name: 'ops', key: OPS, admin: true, rpm: 0 },
        ],
      },
    },
    { now: () => now },
  )
  for (let i = 0; i < 3; i++) t.equal((await send(url, 'GET', '/api/tags', undefined, bearer(APP))).status, 200, `request ${i + 1}`)
  const limited = await send(url, 'POST', '/api/generate', { model: 'llama3.2', prompt: 'x', stream: false }, bearer(APP))
  t.equal(limited.status, 429)
  t.equal(limited.headers['retry-after'], '45')
  t.same(limited.json, { error: 'rate limit exceeded: the key "app" may send 3 requests per minute; retry in 45 s' })
  const openai = await send(url, 'POST', '/v1/chat/completions', { model: 'llama3.2', messages: [] }, bearer(APP))
  t.match(openai.json, { error: { message: /^rate limit exceeded/ } }, "OpenAI's shape on /v1")
  t.equal(fake.count('/api/generate'), 0, 'the refused request never reached an instance')
  for (let i = 0; i < 5; i++) t.equal((await send(url, 'GET', '/api/tags', undefined, bearer(OPS))).status, 200, 'a key with rpm 0 is not limited')

  now += 45_000 // the next minute
  t.equal((await send(url, 'GET', '/api/tags', undefined, bearer(APP))).status, 200, 'served again')

  const scraped = await send(url, 'GET', '/metrics', undefined, bearer(OPS))
  t.match(scraped.text, /corral_rate_limited_total\{key="app",limit="rpm"\} 2/)
  t.match(scraped.text, /corral_requests_total\{route="tags",model="none",instance="i0",status_class="2xx",cache="none",key="app"\} 4/)
  t.match(scraped.text, /corral_requests_total\{[^}]*key="ops"\} 5/)
  await corral.proxy.whenIdle()
  t.match(logs.find((l) => l.msg === 'rate limited'), { key: 'app', limit: 'rpm', path: '/api/generate' })
})

t.test('requests in flight: streams held open count; leaving mid-stream or before any answer frees the slot', async (t) => {
  const fake = await startFakeOllama({ tokens: 100_000, tokenDelayMs: 20 })
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url], {
    auth: { enabled: true, keys: [{ name: 'app', key: APP, max_concurrency: 2 }, { name: 'ops', key: OPS, admin: true }] },
  })
  const a = await openStream(url, APP)
  const b = await openStream(url, APP)
  t.equal(a.status, 200)
  t.equal(b.status, 200)
  t.equal(corral.auth.inFlight('app'), 2)
  const refused = await send(url, 'GET', '/api/tags', undefined, bearer(APP))
  t.equal(refused.status, 429)
  t.equal(refused.headers['retry-after'], '1')
  t.same(refused.json, { error: 'rate limit exceeded: the key "app" may send 2 requests at once; retry in 1 s' })
  t.equal((await send(url, 'GET', '/api/tags', undefined, bearer(OPS))).status, 200, 'another key is not affected')

  a.abort()
  await fake.waitForClosedEarly(1)
  t.equal(corral.auth.inFlight('app'), 1, 'the aborted stream freed its slot')
  t.equal((await send(url, 'GET', '/api/tags', undefined, bearer(APP))).status, 200)

  // A client gone before any answer (the instance holds the headers back).
  fake.script({ kind: 'hang' }, { path: '/api/generate' })
  const controller = new AbortController()
  const hung = request(`${url}/api/generate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...bearer(APP) },
    body: JSON.stringify({ model: 'llama3.2', prompt: 'held', stream: false }),
    signal: controller.signal,
  })
  await fake.waitUntil((f) => f.count('/api/generate') === 3)
  t.equal(corral.auth.inFlight('app'), 2)
  controller.abort()
  await t.rejects(hung)
  await fake.waitForClosedEarly(2)
  t.equal(corral.auth.inFlight('app'), 1, 'freed without any answer')

  b.abort()
  await fake.waitForClosedEarly(3)
  t.equal(corral.auth.inFlight('app'), 0, 'nothing leaked')
  const scraped = await send(url, 'GET', '/metrics', undefined, bearer(OPS))
  t.match(scraped.text, /corral_rate_limited_total\{key="app",limit="concurrency"\} 1/)
})

t.test('reconfigure swaps keys and limits and keeps the requests in flight', async (t) => {
  const fake = await startFakeOllama({ tokens: 100_000, tokenDelayMs: 20 })
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url], {
    auth: { enabled: true, keys: [{ name: 'app', key: APP, max_concurrency: 1 }, { name: 'ops', key: OPS, admin: true }] },
  })
  const held = await openStream(url, APP)
  t.equal(held.status, 200)
  const authOf = (auth: Record<string, unknown>) => configFromObject({ instances: [{ url: fake.url }], auth }).config.auth
  corral.auth.reconfigure(
    authOf({ enabled: true, keys: [{ name: 'app', key: NEW, max_concurrency: 1 }, { name: 'ops', key: OPS, admin: true }] }),
  )
  t.equal((await send(url, 'GET', '/api/tags', undefined, bearer(APP))).status, 401, 'the old key is gone')
  t.equal((await send(url, 'GET', '/api/tags', undefined, bearer(NEW))).status, 429, 'the new key of "app" sees its stream still in flight')
  corral.auth.reconfigure(authOf({ enabled: true, keys: [{ name: 'app', key: NEW, max_concurrency: 2 }] }))
  t.equal((await send(url, 'GET', '/api/tags', undefined, bearer(NEW))).status, 200, 'a raised limit applies at once')
  t.equal((await send(url, 'GET', '/api/tags', undefined, bearer(OPS))).status, 401, 'a removed key is refused')
  t.throws(
    () => corral.auth.reconfigure({ ...authOf({ enabled: true, keys: [{ name: 'app', key: NEW }] }), jwt: { ...jwtStub, jwksFile: '/nonexistent/jwks.json' } }),
    'unreadable key material is refused',
  )
  t.equal((await send(url, 'GET', '/api/tags', undefined, bearer(NEW))).status, 200, 'and the previous settings stay')
  corral.auth.reconfigure(authOf({ enabled: false }))
  t.equal((await send(url, 'GET', '/api/tags')).status, 200, 'auth turned off')
  t.equal(fake.requests.at(-1)?.headers.authorization, undefined)
  held.abort()
  await fake.waitForClosedEarly(1)
  t.equal(corral.auth.inFlight('app'), 0, 'the slot taken before the reloads is released')
})

const jwtStub = {
  secret: undefined,
  publicKey: undefined,
  jwksFile: undefined,
  algorithms: ['RS256'],
  issuer: undefined,
  audience: undefined,
  nameClaim: 'sub',
  adminClaim: 'scope',
  adminValue: 'corral:admin',
  clockToleranceSeconds: 30,
}
