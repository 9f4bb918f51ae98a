/**
 * Transparency: every Ollama endpoint answers through corral exactly as it does straight from the
 * instance (status, content type, body), through raw HTTP and through the official client.
 */
import { createHash } from 'node:crypto'
import t from 'tap'
import { Ollama } from 'ollama'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { startCorral } from '../fixtures/start-corral.js'
import { ndjson, rawExchange, send, stable } from '../fixtures/http.js'

t.test('read and inference endpoints answer as the instance does', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url])
  const cases: [string, string, unknown?][] = [
    ['GET', '/api/version'],
    ['HEAD', '/api/version'],
    ['GET', '/api/tags'],
    ['GET', '/api/ps'],
    ['POST', '/api/show', { model: 'llama3.2' }],
    ['POST', '/api/show', { model: 'missing' }],
    ['POST', '/api/generate', { model: 'llama3.2', prompt: 'why is the sky blue?' }],
    ['POST', '/api/generate', { model: 'llama3.2', prompt: 'why is the sky blue?', stream: false }],
    ['POST', '/api/generate', { model: 'nope', prompt: 'x' }],
    ['POST', '/api/generate', { prompt: 'x' }],
    ['POST', '/api/generate', ''],
    ['POST', '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] }],
    ['POST', '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: false }],
    ['POST', '/api/chat', { model: 'nomic-embed-text', messages: [{ role: 'user', content: 'hi' }] }],
    ['POST', '/api/embed', { model: 'nomic-embed-text', input: ['a', 'b'] }],
    ['POST', '/api/embed', { model: 'nomic-embed-text', input: 5 }],
    ['POST', '/api/embeddings', { model: 'nomic-embed-text', prompt: 'a' }],
    ['POST', '/v1/chat/completions', { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] }],
    ['POST', '/v1/chat/completions', { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: true }],
    ['POST', '/v1/chat/completions', { model: 'missing', messages: [{ role: 'user', content: 'hi' }] }],
    ['POST', '/v1/completions', { model: 'llama3.2', prompt: 'once' }],
    ['POST', '/v1/completions', { model: 'llama3.2', prompt: 'once', stream: true }],
    ['POST', '/v1/embeddings', { model: 'nomic-embed-text', input: 'a' }],
    ['GET', '/v1/models'],
    ['GET', '/v1/models/llama3.2'],
    ['GET', '/v1/models/missing'],
    ['DELETE', '/api/generate'],
    ['GET', '/no/such/path'],
  ]
  for (const [method, path, body] of cases) {
    const name = `${method} ${path} ${body === undefined ? '' : JSON.stringify(body)}`
    const direct = await send(fake.url, method, path, body)
    const proxied = await send(url, method, path, body)
    t.equal(proxied.status, direct.status, `${name}: status ${direct.status}`)
    t.equal(proxied.headers['content-type'], direct.headers['content-type'], `${name}: content type`)
    if (direct.json !== undefined) t.same(stable(proxied.json), stable(direct.json), `${name}: body`)
    else if (String(direct.headers['content-type']).includes('ndjson')) {
      t.same(stable(ndjson(proxied.text)), stable(ndjson(direct.text)), `${name}: stream`)
    } else if (String(direct.headers['content-type']).includes('event-stream')) {
      const events = (s: string) => s.split('\n\n').filter(Boolean).map((e) => (e === 'data: [DONE]' ? e : stable(JSON.parse(e.slice(6)))))
      t.same(events(proxied.text), events(direct.text), `${name}: events`)
    } else t.equal(proxied.text, direct.text, `${name}: text`)
    t.type(proxied.headers['x-request-id'], 'string', `${name}: x-request-id`)
  }
})

t.test('GET and HEAD / answer the heartbeat locally, like Ollama', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url])
  const get = await send(url, 'GET', '/')
  t.equal(get.status, 200)
  t.equal(get.text, 'Ollama is running')
  const head = await send(url, 'HEAD', '/')
  t.equal(head.status, 200)
  t.equal(head.text, '')
  t.equal(fake.count('/'), 0, 'no instance needed for a heartbeat')
})

t.test('the official ollama client works through corral', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url])
  const ollama = new Ollama({ host: url })
  const direct = new Ollama({ host: fake.url })

  t.same(await ollama.version(), await direct.version(), 'version')
  t.same((await ollama.list()).models.map((m) => m.name), ['llama3.2:latest', 'nomic-embed-text:latest'], 'list')
  t.equal((await ollama.ps()).models.length, 1, 'ps')
  t.same((await ollama.show({ model: 'llama3.2' })).capabilities, ['completion'], 'show')

  const generated = await ollama.generate({ model: 'llama3.2', prompt: 'tell me', stream: false })
  t.equal(generated.response, (await direct.generate({ model: 'llama3.2', prompt: 'tell me', stream: false })).response, 'generate')
  t.equal(generated.done_reason, 'stop')

  let streamed = ''
  let chunks = 0
  for await (const part of await ollama.generate({ model: 'llama3.2', prompt: 'tell me', stream: true })) {
    streamed += part.response
    chunks++
  }
  t.equal(streamed, generated.response, 'streamed generate assembles to the same text')
  t.ok(chunks > 2, 'arrived in chunks')

  let chat = ''
  for await (const part of await ollama.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: true })) {
    chat += part.message.content
  }
  t.ok(chat.length > 0, 'chat stream')

  const embed = await ollama.embed({ model: 'nomic-embed-text', input: ['a', 'b'] })
  t.same(embed.embeddings, (await direct.embed({ model: 'nomic-embed-text', input: ['a', 'b'] })).embeddings, 'embed numbers are identical')
  t.equal(embed.embeddings[0]!.length, 768)
  const legacy = await ollama.embeddings({ model: 'nomic-embed-text', prompt: 'a' })
  t.equal(legacy.embedding.length, 768, 'legacy embeddings')

  const statuses: string[] = []
  for await (const p of await ollama.pull({ model: 'qwen3:0.6b', stream: true })) statuses.push(p.status)
  t.equal(statuses[0], 'pulling manifest', 'pull progress streams')
  t.equal(statuses.at(-1), 'success')
  t.ok((await ollama.list()).models.some((m) => m.name === 'qwen3:0.6b'), 'pulled model listed')

  t.equal((await ollama.copy({ source: 'qwen3:0.6b', destination: 'qwen-copy' })).status, 'success', 'copy')
  t.equal((await ollama.delete({ model: 'qwen-copy' })).status, 'success', 'delete')
  t.match(await ollama.delete({ model: 'qwen-copy' }).catch((e: unknown) => e), { status_code: 404, error: /not found/ }, 'Ollama 404 reaches the client as an error')
  t.match(await ollama.generate({ model: 'missing', prompt: 'x' }).catch((e: unknown) => e), { status_code: 404 }, 'missing model')

  const created: string[] = []
  for await (const p of await ollama.create({ model: 'mine', from: 'llama3.2', system: 'be brief', stream: true })) created.push(p.status)
  t.equal(created.at(-1), 'success', 'create')
  const pushed: string[] = []
  for await (const p of await ollama.push({ model: 'mine', stream: true })) pushed.push(p.status)
  t.equal(pushed.at(-1), 'success', 'push')
})

t.test('blob upload and check stream through', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url])
  const blob = Buffer.alloc(3 * 1024 * 1024, 7)
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`
  t.equal((await send(url, 'HEAD', `/api/blobs/${digest}`)).status, 404, 'unknown blob')
  const up = await send(url, 'POST', `/api/blobs/${digest}`, blob, { 'content-type': 'application/octet-stream' })
  t.equal(up.status, 201, 'uploaded')
  t.equal((await send(url, 'HEAD', `/api/blobs/${digest}`)).status, 200, 'now known')
  const bad = await send(url, 'POST', `/api/blobs/sha256:${'0'.repeat(64)}`, blob, { 'content-type': 'application/octet-stream' })
  t.equal(bad.status, 400)
  t.match(bad.json, { error: /digest mismatch/ })
})

t.test('headers: hop-by-hop dropped, X-Forwarded-* set, Host is the instance, X-Request-Id carried', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, logs } = await startCorral(t, [fake.url])
  // HTTP clients refuse to send a Connection header naming other headers: write it by hand.
  const raw = await rawExchange(
    url,
    ['GET /api/tags HTTP/1.1', 'Host: corral', 'Connection: x-secret', 'X-Secret: drop me', 'Keep-Alive: timeout=5', 'X-Request-Id: trace-42', 'Authorization: Bearer abc'].join('\r\n'),
  )
  t.match(raw, /^HTTP\/1\.1 200 OK\r\n/)
  t.match(raw, /\r\nx-request-id: trace-42\r\n/i, 'returned to the client')
  const seen = fake.requests.at(-1)!
  t.equal(seen.headers['x-secret'], undefined, 'header named in Connection dropped')
  t.equal(seen.headers['keep-alive'], undefined, 'keep-alive dropped')
  t.equal(seen.headers['x-forwarded-host'], 'corral')
  t.equal(seen.headers['x-request-id'], 'trace-42', 'sent to the instance')
  t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
  t.equal(seen.headers['x-forwarded-proto'], 'http')
  t.equal(seen.headers.host, new URL(fake.url).host, 'Ollama checks Host; it must be the instance')
  t.equal(seen.headers.authorization, 'Bearer abc', 'end-to-end headers pass')
  t.ok(logs.some((l) => l.msg === 'request' && l.req === 'trace-42' && l.status === 200 && l.instance === 'i0'), 'logged with its id')
  const generated = await send(url, 'GET', '/api/tags')
  t.match(generated.headers['x-request-id'], /^[0-9a-f]{12}-[0-9a-z]+$/, 'generated when absent')
})
