/**
 * API keys against a real corral in front of a fake Ollama: missing, wrong and right keys, keys
 * given as SHA-256 or through ${ENV}, the 401 shape, probes left open, the key never in a log
 * and never forwarded to an instance, the official ollama client with its `headers` option.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ollama } from 'ollama'
import t from 'tap'
import { keyHash } from '../../src/config/auth-config.js'
import { loadConfig, type ConfigError } from '../../src/config/load-config.js'
import { createCorral } from '../../src/index.js'
import { createLogger } from '../../src/observability/logger.js'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { logCapture, startCorral } from '../fixtures/start-corral.js'

const ALICE = 'alice-key-4f1c9e7a2b6d8053'
const BOB = 'bob-key-0a9d3e5c7f1b2468'
const ADMIN = 'admin-key-77c1e2d9b0a4f635'
const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` })
const generate = { model: 'llama3.2', prompt: 'hi', stream: false }

const auth = {
  enabled: true,
  keys: [
    { name: 'alice', key: ALICE },
    { name: 'bob', key_sha256: keyHash(BOB) },
    { name: 'ops', key: ADMIN, admin: true },
  ],
}

t.test('without a key, with a wrong one, with a right one', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, logs, corral } = await startCorral(t, [fake.url], { auth })

  const missing = await send(url, 'POST', '/api/generate', generate)
  t.equal(missing.status, 401)
  t.match(missing.json, { error: /^unauthorized: missing API key/ })
  t.equal(missing.headers['www-authenticate'], 'Bearer realm="corral"')
  t.equal(missing.headers['content-type'], 'application/json; charset=utf-8')

  const wrong = await send(url, 'POST', '/api/generate', generate, bearer('not-a-key-at-all-0000000'))
  t.equal(wrong.status, 401)
  t.same(wrong.json, { error: 'unauthorized: invalid API key' })
  t.equal(wrong.headers['www-authenticate'], 'Bearer realm="corral", error="invalid_token"')
  t.notMatch(wrong.text, /not-a-key/, 'the token is not echoed')

  const basic = await send(url, 'GET', '/api/tags', undefined, { authorization: `Basic ${Buffer.from(`x:${ALICE}`).toString('base64')}` })
  t.equal(basic.status, 401)
  t.match(basic.json, { error: /not a Bearer token/ })

  const openai = await send(url, 'POST', '/v1/chat/completions', { model: 'llama3.2', messages: [] })
  t.equal(openai.status, 401)
  t.match(openai.json, { error: { message: /^unauthorized: missing API key/, type: 'invalid_request_error' } }, "OpenAI's shape on /v1")

  t.equal(fake.count('/api/generate'), 0, 'nothing refused reached the instance')

  const ok = await send(url, 'POST', '/api/generate', generate, bearer(ALICE))
  t.equal(ok.status, 200)
  t.match(ok.json, { model: 'llama3.2', done: true })
  const sha = await send(url, 'POST', '/api/generate', { ...generate, prompt: 'other' }, bearer(BOB))
  t.equal(sha.status, 200, 'a key given as key_sha256')
  t.equal((await send(url, 'GET', '/api/tags', undefined, { authorization: `bearer   ${ALICE}` })).status, 200, 'the scheme is case-insensitive')

  t.equal((await send(url, 'GET', '/healthz')).status, 200, '/healthz stays open')
  t.equal((await send(url, 'GET', '/readyz')).status, 200, '/readyz stays open')
  t.equal((await send(url, 'GET', '/')).status, 401, 'the heartbeat needs a key like every other route')
  t.equal((await send(url, 'GET', '/', undefined, bearer(ALICE))).text, 'Ollama is running')

  await corral.proxy.whenIdle()
  const requests = logs.filter((l) => l.msg === 'request' && l.route === 'generate')
  t.same(requests.map((l) => l.key), ['alice', 'bob'], 'the request log names the key')
  const failures = logs.filter((l) => l.msg === 'auth failed')
  t.same(failures.map((l) => [l.key, l.reason]), [['unknown', 'missing'], ['unknown', 'invalid'], ['unknown', 'missing'], ['unknown', 'missing'], ['unknown', 'missing']])
  const all = JSON.stringify(logs)
  for (const secret of [ALICE, BOB, 'not-a-key-at-all']) t.notOk(all.includes(secret), 'no key in the log')
})

t.test("the client's Authorization is not forwarded while auth is on; it is while auth is off", async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const on = await startCorral(t, [fake.url], { auth })
  t.equal((await send(on.url, 'POST', '/api/generate', generate, bearer(ALICE))).status, 200)
  t.equal((await send(on.url, 'POST', '/api/show', { model: 'llama3.2' }, bearer(ALICE))).status, 200)
  t.equal((await send(on.url, 'GET', '/api/tags', undefined, bearer(ALICE))).status, 200, 'a route every instance answers')
  t.equal((await send(on.url, 'POST', '/api/pull', { model: 'llama3.2', stream: false }, bearer(ADMIN))).status, 200, 'model management')
  t.ok(fake.requests.length >= 4)
  for (const r of fake.requests) t.equal(r.headers.authorization, undefined, `${r.path}: no Authorization upstream`)

  const off = await startCorral(t, [fake.url])
  const before = fake.requests.length
  t.equal((await send(off.url, 'POST', '/api/generate', { ...generate, prompt: 'x' }, bearer('instance-token'))).status, 200)
  t.equal(fake.requests[before]?.headers.authorization, 'Bearer instance-token', 'auth off: passed through as before')
})

t.test('a key from the environment (${ENV} in the YAML) and a missing variable', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const dir = mkdtempSync(join(tmpdir(), 'corral-auth-'))
  const file = join(dir, 'corral.yaml')
  writeFileSync(
    file,
    `listen: 127.0.0.1:0\ninstances:\n  - url: ${fake.url}\nauth:\n  enabled: true\n  keys:\n    - name: from-env\n      key: \${CORRAL_TEST_KEY}\n`,
  )
  let problems: readonly string[] = []
  try {
    loadConfig({ file, env: {} })
  } catch (err) {
    problems = (err as ConfigError).problems
  }
  t.same(problems, ['auth.keys[0].key references ${CORRAL_TEST_KEY}, which is not set'], 'a missing variable is a config error')
  const envKey = 'env-key-9e8d7c6b5a403122'
  const { config } = loadConfig({ file, env: { CORRAL_TEST_KEY: envKey } })
  t.same(Object.keys(config.auth.keys[0]!).sort(), ['admin', 'cacheGroup', 'limits', 'name', 'priority', 'sha256', 'weight'], 'only the hash is kept')
  t.notOk(JSON.stringify(config).includes(envKey), 'the plain key is nowhere in the compiled config')
  const { stream, lines } = logCapture()
  const corral = createCorral(config, { logger: createLogger('info', stream) })
  const url = await corral.listen()
  t.teardown(() => corral.close(0))
  t.equal((await send(url, 'GET', '/api/version', undefined, bearer(envKey))).status, 200)
  t.equal((await send(url, 'GET', '/api/version', undefined, bearer('env-key-9e8d7c6b5a403123'))).status, 401)
  t.notOk(JSON.stringify(lines).includes(envKey))
})

t.test('the ollama npm client sends the key through its headers option', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], { auth })
  const client = new Ollama({ host: url, headers: { Authorization: `Bearer ${ALICE}` } })
  const answer = await client.generate({ model: 'llama3.2', prompt: 'hello' })
  t.equal(answer.done, true)
  let streamed = ''
  for await (const part of await client.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: true })) {
    streamed += part.message.content
  }
  t.ok(streamed.length > 0, 'a streamed chat')
  t.ok((await client.embed({ model: 'nomic-embed-text', input: 'x' })).embeddings.length === 1, 'embeddings')
  t.ok((await client.list()).models.length > 0, 'list')

  const anonymous = new Ollama({ host: url })
  t.match(await failure(anonymous.generate({ model: 'llama3.2', prompt: 'hello' })), { status_code: 401, error: /unauthorized: missing API key/ })
  t.match(await failure(client.pull({ model: 'llama3.2' })), { status_code: 403, error: /forbidden: the key "alice" may not use \/api\/pull/ })
})

/** What `promise` rejected with (fails the test when it resolves). */
async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (err) {
    return err
  }
  return new Error('resolved, expected a rejection')
}
