/**
 * Deny by default: a plain key reaches exactly the inference and read routes; Ollama's account,
 * experimental and debug routes and any unknown path are refused by corral (403) without reaching
 * an instance, while an admin key still passes them through. corral's own paths match with a
 * trailing slash too, and the client's Authorization never reaches an instance while auth is on.
 */
import t from 'tap'
import { scopeOf } from '../../src/auth/scope.js'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { startCorral } from '../fixtures/start-corral.js'

const USER = 'user-key-5b2e8f1a9c3d7046'
const ADMIN = 'admin-key-c4a1e7b9d2f05836'
const keys = [
  { name: 'app', key: USER },
  { name: 'ops', key: ADMIN, admin: true },
]
const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` })

/** [method, path] Ollama serves that a plain key must not reach, and paths nobody listed. */
const NOT_FOR_USERS: [string, string][] = [
  ['POST', '/api/signout'],
  ['POST', '/api/me'],
  ['DELETE', '/api/user/keys/c3NoLWVkMjU1MTk'],
  ['POST', '/api/experimental/web_fetch'],
  ['POST', '/api/experimental/web_search'],
  ['GET', '/debug/pprof/'],
  ['GET', '/debug/pprof/heap'],
  ['GET', '/api/status'],
  ['GET', '/api/unknown'],
  ['POST', '/v1/files'],
  ['GET', '/%61pi/signout'],
]

t.test('scopes: the user routes are a list, everything else is admin', async (t) => {
  for (const path of ['/', '/api/generate', '/api/chat', '/api/embed', '/api/embeddings', '/api/show', '/api/tags', '/api/ps', '/api/version']) {
    t.equal(scopeOf('POST', path, false), 'user', path)
  }
  for (const path of ['/v1/chat/completions', '/v1/completions', '/v1/embeddings', '/v1/models', '/v1/models/llama3.2', '/v1/models/hf.co/org/m']) {
    t.equal(scopeOf('GET', path, false), 'user', path)
  }
  for (const [method, path] of NOT_FOR_USERS) t.equal(scopeOf(method, path, false), 'admin', `${method} ${path}`)
  t.equal(scopeOf('GET', '/healthz/', false), 'open')
  t.equal(scopeOf('GET', '/api/tags/', false), 'user', 'a trailing slash is judged as Ollama sees it')
})

t.test('a plain key is refused by corral on any route not listed; an admin key passes', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], { auth: { enabled: true, keys } })
  for (const [method, path] of NOT_FOR_USERS) {
    const res = await send(url, method, path, method === 'GET' ? undefined : {}, bearer(USER))
    t.equal(res.status, 403, `${method} ${path}`)
    const message = path.startsWith('/v1/') ? (res.json as { error: { message: string } }).error.message : (res.json as { error: string }).error
    t.match(message, /^forbidden: the key "app" may not use .* \(admin only\)$/)
  }
  t.equal(fake.requests.length, 0, 'none reached the instance')
  const admin = await send(url, 'POST', '/api/signout', {}, bearer(ADMIN))
  t.not(admin.status, 403, 'an admin key is passed through')
  t.equal(fake.count('/api/signout'), 1)
})

t.test("corral's own paths with a trailing slash are corral's, and Authorization is never forwarded", async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], { auth: { enabled: true, keys, metrics_open: true } })
  const healthz = await send(url, 'GET', '/healthz/', undefined, bearer(USER))
  t.equal(healthz.status, 200)
  t.same(healthz.json, { status: 'ok' })
  const readyz = await send(url, 'GET', '/readyz/', undefined, bearer(USER))
  t.equal(readyz.status, 200)
  t.match(readyz.json, { status: 'ready' })
  const metrics = await send(url, 'GET', '/metrics/', undefined, bearer(USER))
  t.equal(metrics.status, 200)
  t.match(metrics.text, /corral_/)
  t.equal((await send(url, 'GET', '/api/load-balancer-stats/', undefined, bearer(ADMIN))).status, 200)
  t.equal(fake.requests.length, 0, 'no probe reached the instance')

  await send(url, 'GET', '/api/tags/', undefined, bearer(USER))
  await send(url, 'POST', '/api/signout', {}, bearer(ADMIN))
  t.equal(fake.requests.length, 2, 'both proxied requests reached the instance')
  for (const r of fake.requests) t.equal(r.headers.authorization, undefined, `no Authorization on ${r.method} ${r.path}`)
})
