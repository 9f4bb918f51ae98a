/**
 * Admin scope: a plain key runs models and reads model lists, an admin key also reaches the
 * stats, /metrics, the cache's own endpoints, model management, blob uploads and /api/admin/*;
 * encoded or padded paths do not slip past; `auth.metrics_open` opens /metrics on both listeners.
 */
import { createHash } from 'node:crypto'
import t from 'tap'
import { normalizedPath, scopeOf } from '../../src/auth/scope.js'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { rawExchange, send } from '../fixtures/http.js'
import { startCorral } from '../fixtures/start-corral.js'

const USER = 'user-key-5b2e8f1a9c3d7046'
const ADMIN = 'admin-key-c4a1e7b9d2f05836'
const keys = [
  { name: 'app', key: USER },
  { name: 'ops', key: ADMIN, admin: true },
]
const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` })
const blob = Buffer.from('a blob for create')
const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`

/** [method, path, body] of every admin route. */
const ADMIN_ROUTES: [string, string, unknown][] = [
  ['GET', '/metrics', undefined],
  ['GET', '/api/load-balancer-stats', undefined],
  ['GET', '/api/advanced-cache-stats', undefined],
  ['DELETE', '/api/cache', undefined],
  ['DELETE', '/api/cache?layer=chunk', undefined],
  ['PUT', '/api/cache/chunks/doc-1', { source: 'handbook.pdf' }],
  ['GET', '/api/cache/chunks/doc-1', undefined],
  ['DELETE', '/api/cache/chunks/doc-1', undefined],
  ['POST', '/api/pull', { model: 'llama3.2', stream: false }],
  ['POST', '/api/copy', { source: 'llama3.2', destination: 'llama-copy' }],
  ['DELETE', '/api/delete', { model: 'llama-copy' }],
  ['POST', '/api/create', { model: 'mine', from: 'llama3.2', stream: false }],
  ['POST', '/api/push', { model: 'mine', stream: false }],
  ['HEAD', `/api/blobs/${digest}`, undefined],
  ['POST', `/api/blobs/${digest}`, blob],
  ['POST', '/api/admin/reload', undefined],
]

/** [method, path, body] of routes any valid key may use. */
const USER_ROUTES: [string, string, unknown][] = [
  ['POST', '/api/generate', { model: 'llama3.2', prompt: 'hi', stream: false }],
  ['POST', '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: false }],
  ['POST', '/api/embed', { model: 'nomic-embed-text', input: 'x' }],
  ['POST', '/api/embeddings', { model: 'nomic-embed-text', prompt: 'x' }],
  ['POST', '/api/show', { model: 'llama3.2' }],
  ['GET', '/api/tags', undefined],
  ['GET', '/api/ps', undefined],
  ['GET', '/api/version', undefined],
  ['POST', '/v1/chat/completions', { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] }],
  ['POST', '/v1/embeddings', { model: 'nomic-embed-text', input: 'x' }],
  ['GET', '/v1/models', undefined],
]

t.test('a plain key runs models; only an admin key reaches admin routes', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], { auth: { enabled: true, keys } })
  for (const [method, path, body] of USER_ROUTES) {
    const res = await send(url, method, path, body, bearer(USER))
    t.equal(res.status, 200, `plain key: ${method} ${path}`)
  }
  for (const [method, path, body] of ADMIN_ROUTES) {
    const plain = await send(url, method, path, body, bearer(USER))
    t.equal(plain.status, 403, `plain key: ${method} ${path}`)
    if (method !== 'HEAD') t.match(plain.json, { error: /^forbidden: the key "app" may not use \/\S+ \(admin only\)$/ })
    const none = await send(url, method, path, body)
    t.equal(none.status, 401, `no key: ${method} ${path}`)
    const admin = await send(url, method, path, body, bearer(ADMIN))
    t.notOk(admin.status === 401 || admin.status === 403, `admin key: ${method} ${path} (${admin.status})`)
  }
  t.equal(fake.count('/api/pull'), 1, 'only the admin pull reached the instance')
  t.equal(fake.count('/api/delete'), 1)
  for (const [method, path, body] of USER_ROUTES) {
    t.equal((await send(url, method, path, body, bearer(ADMIN))).status, 200, `admin key: ${method} ${path}`)
  }
})

t.test('encoded, doubled or dotted paths are judged as Ollama would route them', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], { auth: { enabled: true, keys } })
  for (const path of ['/api/%70ull', '/api//pull', '/api/pull/', '/api/./pull', '/api/x/../pull', '/api/blobs%2Fsha256:00']) {
    t.equal((await send(url, 'POST', path, { model: 'llama3.2' }, bearer(USER))).status, 403, path)
  }
  // A target that does not decode is refused before auth even looks at it (the server's checks).
  t.equal((await send(url, 'POST', '/api/%zz', { model: 'llama3.2' }, bearer(USER))).status, 400, '/api/%zz')
  const absolute = await rawExchange(url, `POST http://${new URL(fake.url).host}/api/pull HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${USER}\r\nContent-Type: application/json\r\nContent-Length: 2`, '{}')
  t.match(absolute, /^HTTP\/1\.1 403 /, 'an absolute-form target needs admin')
  t.equal(fake.count(), 0, 'none reached the instance')
  t.equal(normalizedPath('/api/%70ull'), '/api/pull')
  t.equal(normalizedPath('//api/../api/./tags/'), '/api/tags')
  t.equal(normalizedPath('/%E0%A4%A'), undefined)
  t.equal(scopeOf('GET', '/healthz', false), 'open')
  t.equal(scopeOf('POST', '/healthz', false), 'admin', 'only reads of the probes are open (and POST /healthz is no user route)')
  t.equal(scopeOf('GET', '/metrics', true), 'open')
  t.equal(scopeOf('GET', '/metrics', false), 'admin')
  t.equal(scopeOf('GET', '/api/tags', false), 'user')
  t.equal(scopeOf('GET', 'http://h/api/tags', false), 'admin', 'absolute form')
  t.equal(scopeOf('OPTIONS', '*', false), 'admin')
})

t.test('metrics_open opens GET /metrics on both listeners; otherwise both want an admin key', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const closed = await startCorral(t, [fake.url], { auth: { enabled: true, keys }, metrics: { listen: '127.0.0.1:0' } })
  const closedSide = closed.corral.metricsUrl()!
  for (const base of [closed.url, closedSide]) {
    t.equal((await send(base, 'GET', '/metrics')).status, 401, `${base}: no key`)
    t.equal((await send(base, 'GET', '/metrics', undefined, bearer(USER))).status, 403, `${base}: plain key`)
    const scraped = await send(base, 'GET', '/metrics', undefined, bearer(ADMIN))
    t.equal(scraped.status, 200, `${base}: admin key`)
    t.match(scraped.text, /corral_auth_failures_total\{reason="missing"\} [1-9]/)
  }
  const open = await startCorral(t, [fake.url], { auth: { enabled: true, keys, metrics_open: true }, metrics: { listen: '127.0.0.1:0' } })
  for (const base of [open.url, open.corral.metricsUrl()!]) {
    const scraped = await send(base, 'GET', '/metrics')
    t.equal(scraped.status, 200, `${base}: open`)
    t.match(scraped.text, /# TYPE corral_requests_total counter/)
  }
  t.equal((await send(open.url, 'GET', '/api/load-balancer-stats')).status, 401, 'the stats stay closed')
  t.equal((await send(open.url, 'GET', '/api/load-balancer-stats', undefined, bearer(USER))).status, 403)
})
