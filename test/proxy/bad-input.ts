/**
 * Bad requests get a clear error in the route's shape with the right status, never reach an
 * instance, and never harm another client's request.
 */
import { Readable } from 'node:stream'
import t from 'tap'
import { request } from 'undici'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { startCorral } from '../fixtures/start-corral.js'
import { ndjson, send } from '../fixtures/http.js'

t.test('fields corral reads are type-checked: 400 in Ollama shape, nothing sent', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url])
  const cases: [string, string, RegExp][] = [
    ['/api/generate', '{"model": "llama3.2", "prompt": ', /^invalid JSON in request body: /],
    ['/api/generate', '[1, 2]', /^request body must be a JSON object, got an array$/],
    ['/api/generate', '"text"', /^request body must be a JSON object, got string$/],
    ['/api/generate', '{"model": 42}', /^model must be a string, got number 42$/],
    ['/api/chat', '{"model": "llama3.2", "messages": "hi"}', /^messages must be an array, got string "hi"$/],
    ['/api/chat', '{"model": "llama3.2", "messages": [], "options": [1]}', /^options must be an object, got an array$/],
    ['/api/embed', '{"model": "nomic-embed-text", "input": "x", "stream": "yes"}', /^stream must be true or false, got string "yes"$/],
    ['/api/show', '{"model": {"name": "x"}}', /^model must be a string, got object/],
  ]
  for (const [path, body, message] of cases) {
    const res = await send(url, 'POST', path, body)
    t.equal(res.status, 400, `${path} ${body}`)
    t.match(res.headers['content-type'], /^application\/json/)
    t.match(res.json, { error: message }, `${path}: ${String(message)}`)
    t.match(res.headers['x-request-id'], /^[0-9a-f]{12}-[0-9a-z]+$/, 'corral-made errors carry the request id too')
  }
  t.equal(fake.count(), 0, 'no bad request reached the instance')
})

t.test('/v1 routes answer errors in OpenAI shape', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url])
  const res = await send(url, 'POST', '/v1/chat/completions', '{"model": 1}')
  t.equal(res.status, 400)
  t.same(res.json, { error: { message: 'model must be a string, got number 1', type: 'invalid_request_error', param: null, code: null } })
})

t.test('bodies over max_body_size get 413, declared or chunked', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], { proxy: { max_body_size: '64KiB' } })
  const big = JSON.stringify({ model: 'llama3.2', prompt: 'x'.repeat(70 * 1024) })
  const declared = await send(url, 'POST', '/api/generate', big)
  t.equal(declared.status, 413)
  t.match(declared.json, { error: 'request body is larger than the limit of 65536 bytes' })
  const chunks = Readable.from(Array.from({ length: 10 }, () => Buffer.alloc(10 * 1024, 0x20)))
  const chunked = await request(`${url}/api/embed`, { method: 'POST', body: chunks })
  t.equal(chunked.statusCode, 413)
  t.match(await chunked.body.json(), { error: /larger than the limit/ })
  const fits = await send(url, 'POST', '/api/generate', { model: 'llama3.2', prompt: 'x'.repeat(60 * 1024), stream: false })
  t.equal(fits.status, 200, 'a body under the limit passes')
  t.equal(fake.count(), 1)
})

t.test("a client's bad request never harms another's", async (t) => {
  const fake = await startFakeOllama({ tokenDelayMs: 20, tokens: 20 })
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], { proxy: { max_body_size: '16KiB' } })
  const good = Array.from({ length: 4 }, (_, i) => send(url, 'POST', '/api/generate', { model: 'llama3.2', prompt: `good ${i}` }))
  const bad = [
    send(url, 'POST', '/api/generate', '{"model":'),
    send(url, 'POST', '/api/generate', { model: 'llama3.2', prompt: 'y'.repeat(20_000) }),
    send(url, 'POST', '/api/chat', { model: 'llama3.2', messages: 7 }),
  ]
  const [goods, bads] = await Promise.all([Promise.all(good), Promise.all(bad)])
  for (const g of goods) {
    t.equal(g.status, 200)
    t.equal(ndjson(g.text).at(-1)!.done, true, 'complete stream')
  }
  t.same(bads.map((b) => b.status), [400, 413, 400])
})

t.test('errors from the instance pass through unchanged', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url])
  fake.script({ kind: 'status', status: 500, error: 'llama runner process has terminated: exit status 2' })
  const res = await send(url, 'POST', '/api/generate', { model: 'llama3.2', prompt: 'x' })
  t.equal(res.status, 500)
  t.same(res.json, { error: 'llama runner process has terminated: exit status 2' })
  t.equal(fake.count(), 1, 'a 500 from Ollama is its answer, not retried')
  const empty = await send(url, 'POST', '/api/generate', '')
  t.equal(empty.status, 400)
  t.same(empty.json, { error: 'missing request body' }, "Ollama's own message for an empty body")
})
