/**
 * Keys and JWT subjects live in separate namespaces: a token whose `sub` is a key's name has its
 * own rate bucket, log name, metric label and cache partition; a key may not take a name from
 * the JWT namespace; a subject with control characters is refused (it would reach logs and labels).
 */
import { SignJWT } from 'jose'
import t from 'tap'
import { configFromObject, type ConfigError } from '../../src/config/load-config.js'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { startCorral } from '../fixtures/start-corral.js'

const SECRET = 'a-shared-secret-of-at-least-32-characters!'
const ALICE = 'alice-key-4f1c9e7a2b6d8053'
const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })
const seeded = { model: 'llama3.2', prompt: 'namespaces', options: { seed: 7 }, stream: false }

function token(sub: string): Promise<string> {
  const now = Math.floor(Date.now() / 1000)
  return new SignJWT({ sub, exp: now + 600 }).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(SECRET))
}

t.test('a JWT whose sub is a key name shares nothing with the key', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, logs, corral } = await startCorral(t, [fake.url], {
    auth: { enabled: true, metrics_open: true, keys: [{ name: 'alice', key: ALICE }], jwt: { secret: SECRET }, limits: { rpm: 1 } },
  })
  const jwt = await token('alice')

  t.equal((await send(url, 'POST', '/api/generate', seeded, bearer(ALICE))).status, 200)
  t.equal((await send(url, 'POST', '/api/generate', seeded, bearer(ALICE))).status, 429, "the key's minute is used up")
  const asToken = await send(url, 'POST', '/api/generate', seeded, bearer(jwt))
  t.equal(asToken.status, 200, 'the token has a rate bucket of its own')
  t.equal(asToken.headers['x-corral-cache'], 'miss', "and does not find the key's cache entry")

  await corral.proxy.whenIdle()
  const names = logs.filter((l) => l.msg === 'request' && l.route === 'generate').map((l) => l.key)
  t.same(names, ['alice', 'jwt:alice'], 'logged apart')
  const limited = logs.filter((l) => l.msg === 'rate limited').map((l) => l.key)
  t.same(limited, ['alice'])

  const metrics = (await send(url, 'GET', '/metrics')).text
  t.match(metrics, /corral_requests_total\{[^}]*key="alice"[^}]*\} 1\n/, 'the key counts its own request')
  t.match(metrics, /corral_requests_total\{[^}]*key="jwt:alice"[^}]*\} 1\n/, 'the token counts under its own label')
})

t.test('a subject with control characters is refused', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, logs } = await startCorral(t, [fake.url], { auth: { enabled: true, jwt: { secret: SECRET } } })
  const forged = await send(url, 'GET', '/api/tags', undefined, bearer(await token('svc\nlevel=admin')))
  t.equal(forged.status, 401)
  t.match(forged.json, { error: /no usable "sub" claim/ })
  t.notOk(JSON.stringify(logs).includes('level=admin'), 'the subject never reaches the log')
})

t.test('a key may not be named in the JWT namespace', async (t) => {
  const problems = (() => {
    try {
      configFromObject({ instances: [{ url: 'http://127.0.0.1:1' }], auth: { enabled: true, keys: [{ name: 'jwt:alice', key: ALICE }] } })
      return []
    } catch (err) {
      return [...(err as ConfigError).problems]
    }
  })()
  t.match(problems, [/^auth\.keys\[0\]\.name must not start with "jwt:"/])
})
