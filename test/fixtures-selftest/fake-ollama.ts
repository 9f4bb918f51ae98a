// Tests of the fake Ollama itself, over real sockets: if the fixture lies, every proxy test lies.
import { createHash, randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { Readable } from 'node:stream'
import { Ollama } from 'ollama'
import t from 'tap'
import { Agent, request } from 'undici'
import type { Dispatcher } from 'undici'
import { SERVER_BUSY_ERROR, startFakeOllama } from '../fixtures/fake-ollama.js'
import type { FakeOllama, FakeOllamaOptions } from '../fixtures/fake-ollama.js'

interface Reply {
  status: number
  type: string
  text: string
  headers: Record<string, string | string[] | undefined>
}

type Json = Record<string, unknown>

/** Starts a fake that the test closes on teardown. */
async function start(t: { teardown(fn: () => unknown): void }, opts?: FakeOllamaOptions): Promise<FakeOllama> {
  const fake = await startFakeOllama(opts)
  t.teardown(() => fake.close())
  return fake
}

async function call(fake: FakeOllama, method: Dispatcher.HttpMethod, path: string, body?: unknown, opts: { headers?: Record<string, string>; dispatcher?: Dispatcher } = {}): Promise<Reply> {
  const res = await request(fake.url + path, {
    method,
    headers: opts.headers,
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    dispatcher: opts.dispatcher,
  })
  const text = await res.body.text()
  return { status: res.statusCode, type: String(res.headers['content-type'] ?? ''), text, headers: res.headers }
}

function json<T = Json>(reply: Reply): T {
  return JSON.parse(reply.text) as T
}

interface Line { text: string; at: number }

/** Reads a streamed body, timestamping each complete frame when its bytes arrive. */
async function readFrames(body: AsyncIterable<Buffer>, frames: Line[], separator = '\n'): Promise<number> {
  let buffer = ''
  let reads = 0
  for await (const chunk of body) {
    reads++
    const at = performance.now()
    buffer += chunk.toString('utf8')
    for (let i = buffer.indexOf(separator); i !== -1; i = buffer.indexOf(separator)) {
      frames.push({ text: buffer.slice(0, i), at })
      buffer = buffer.slice(i + separator.length)
    }
  }
  return reads
}

async function stream(fake: FakeOllama, path: string, body: unknown, separator = '\n'): Promise<{ status: number; type: string; frames: Line[]; reads: number; headersAt: number; startedAt: number }> {
  const startedAt = performance.now()
  const res = await request(fake.url + path, { method: 'POST', body: JSON.stringify(body) })
  const headersAt = performance.now()
  const frames: Line[] = []
  const reads = await readFrames(res.body, frames, separator)
  return { status: res.statusCode, type: String(res.headers['content-type']), frames, reads, headersAt, startedAt }
}

function norm(v: number[]): number {
  return Math.sqrt(v.reduce((s, x) => s + x * x, 0))
}

function errorCode(err: unknown): string {
  return String((err as { code?: unknown }).code)
}

void t.test('root and version answer like Ollama', async (t) => {
  const fake = await start(t, { version: '0.11.0' })
  const root = await call(fake, 'GET', '/')
  t.equal(root.status, 200)
  t.match(root.type, /^text\/plain/)
  t.equal(root.text, 'Ollama is running')
  const head = await call(fake, 'HEAD', '/')
  t.equal(head.status, 200)
  t.equal(head.text, '')
  t.same(json(await call(fake, 'GET', '/api/version')), { version: '0.11.0' })
  t.equal((await call(fake, 'HEAD', '/api/version')).status, 200)
})

void t.test('tags, ps and show describe the models', async (t) => {
  const fake = await start(t, { models: [{ name: 'llama3.2' }, { name: 'nomic-embed-text', embedding: true, dims: 384 }, { name: 'qwen3:8b', digest: 'ab'.repeat(32), parameterSize: '8.2B', family: 'qwen3' }] })
  const other = await start(t)
  interface Tags { models: Array<{ name: string; model: string; digest: string; size: number; modified_at: string; details: Json }> }
  const tags = json<Tags>(await call(fake, 'GET', '/api/tags'))
  t.same(tags.models.map((m) => m.name).sort(), ['llama3.2:latest', 'nomic-embed-text:latest', 'qwen3:8b'])
  const llama = tags.models.find((m) => m.name === 'llama3.2:latest')
  t.match(llama, { model: 'llama3.2:latest', digest: /^[0-9a-f]{64}$/, size: Number, modified_at: String, details: { format: 'gguf', family: 'llama', families: ['llama'], parameter_size: '3.2B', quantization_level: 'Q4_K_M' } })
  t.equal(tags.models.find((m) => m.name === 'qwen3:8b')?.digest, 'ab'.repeat(32))
  // The same name has the same digest on every fake, as the same pull would on every instance.
  t.equal(json<Tags>(await call(other, 'GET', '/api/tags')).models.find((m) => m.name === 'llama3.2:latest')?.digest, llama?.digest)
  t.equal((await call(fake, 'HEAD', '/api/tags')).status, 200)

  interface Ps { models: Array<{ name: string; digest: string; expires_at: string; size_vram: number; context_length: number }> }
  t.same(json<Ps>(await call(fake, 'GET', '/api/ps')).models.map((m) => m.name), ['llama3.2:latest'])
  await call(fake, 'POST', '/api/embed', { model: 'nomic-embed-text', input: 'warm up' })
  const ps = json<Ps>(await call(fake, 'GET', '/api/ps'))
  t.same(ps.models.map((m) => m.name).sort(), ['llama3.2:latest', 'nomic-embed-text:latest'])
  t.match(ps.models[0], { digest: /^[0-9a-f]{64}$/, expires_at: String, size_vram: Number, context_length: 4096 })

  const show = json(await call(fake, 'POST', '/api/show', { model: 'llama3.2' }))
  t.match(show, { license: String, modelfile: /FROM/, parameters: String, template: String, details: { family: 'llama' }, capabilities: ['completion'], modified_at: String })
  t.match(show.model_info, { 'general.architecture': 'llama', 'llama.embedding_length': 768 })
  const embedShow = json(await call(fake, 'POST', '/api/show', { name: 'nomic-embed-text:latest' }))
  t.same(embedShow.capabilities, ['embedding'])
  t.match(embedShow.model_info, { 'nomic-bert.embedding_length': 384 })
  const missing = await call(fake, 'POST', '/api/show', { model: 'nope' })
  t.equal(missing.status, 404)
  t.same(json(missing), { error: "model 'nope' not found" })
})

void t.test('generate streams NDJSON one token at a time', async (t) => {
  const fake = await start(t, { tokenDelayMs: 25, tokens: 8 })
  const res = await stream(fake, '/api/generate', { model: 'llama3.2', prompt: 'Why is the sky blue?' })
  t.equal(res.status, 200)
  t.equal(res.type, 'application/x-ndjson')
  t.equal(res.frames.length, 9, '8 tokens and a final chunk')
  const chunks = res.frames.map((f) => JSON.parse(f.text) as Json)
  for (const chunk of chunks.slice(0, -1)) t.match(chunk, { model: 'llama3.2', created_at: String, response: /\S/, done: false })
  t.match(chunks.at(-1), {
    model: 'llama3.2', response: '', done: true, done_reason: 'stop', context: Array,
    total_duration: Number, load_duration: Number, prompt_eval_count: Number, prompt_eval_duration: Number, eval_count: 8, eval_duration: Number,
  })
  const first = res.frames[0]?.at ?? 0
  const last = res.frames.at(-1)?.at ?? 0
  t.ok(last - first >= 100, `the last chunk came ${Math.round(last - first)}ms after the first (7 delays of 25ms)`)
  t.ok(res.reads >= 5, `the body arrived in ${res.reads} separate reads`)
  t.ok(Number(chunks.at(-1)?.total_duration) >= Number(chunks.at(-1)?.eval_duration), 'durations are nanoseconds of the same clock')
})

void t.test('answers are deterministic, stream or not, on every fake', async (t) => {
  const fake = await start(t)
  const other = await start(t)
  const body = { model: 'llama3.2', prompt: 'Tell me about llamas', options: { temperature: 0 } }
  const streamed = await stream(fake, '/api/generate', body)
  const tokens = streamed.frames.map((f) => (JSON.parse(f.text) as { response: string }).response).join('')
  const whole = await call(fake, 'POST', '/api/generate', { ...body, stream: false })
  t.equal(whole.type, 'application/json; charset=utf-8')
  const answer = json<{ response: string; done: boolean; done_reason: string; context: number[]; eval_count: number }>(whole)
  t.match(answer, { done: true, done_reason: 'stop', eval_count: 8 })
  t.equal(answer.response, tokens, 'stream:false returns the streamed text')
  t.equal(json<{ response: string }>(await call(other, 'POST', '/api/generate', { ...body, stream: false, model: 'llama3.2:latest' })).response, tokens, 'same answer on another fake, with the full name')
  const different = json<{ response: string }>(await call(fake, 'POST', '/api/generate', { ...body, stream: false, prompt: 'Tell me about alpacas' }))
  t.not(different.response, tokens)
  const seeded = json<{ response: string }>(await call(fake, 'POST', '/api/generate', { ...body, stream: false, options: { temperature: 0, seed: 42 } }))
  t.not(seeded.response, tokens, 'options change the answer')

  const short = json<{ response: string; done_reason: string; eval_count: number }>(await call(fake, 'POST', '/api/generate', { ...body, stream: false, options: { temperature: 0, num_predict: 3 } }))
  t.match(short, { done_reason: 'length', eval_count: 3 })
  t.ok(tokens.startsWith(short.response), 'a num_predict-limited answer is a prefix of the full one')
})

void t.test('chat streams messages; empty requests load and unload', async (t) => {
  const fake = await start(t)
  const messages = [{ role: 'user', content: 'hello' }]
  const res = await stream(fake, '/api/chat', { model: 'llama3.2', messages })
  const chunks = res.frames.map((f) => JSON.parse(f.text) as { message: { role: string; content: string }; done: boolean; done_reason?: string })
  t.equal(chunks.length, 9)
  t.match(chunks[0], { model: 'llama3.2', created_at: String, message: { role: 'assistant', content: /\S/ }, done: false })
  t.match(chunks.at(-1), { message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop', eval_count: 8 })
  const whole = json<{ message: { content: string } }>(await call(fake, 'POST', '/api/chat', { model: 'llama3.2', messages, stream: false }))
  t.equal(whole.message.content, chunks.map((c) => c.message.content).join(''))

  // Loading answers one JSON object even though stream defaults to true, as Ollama does.
  const load = await call(fake, 'POST', '/api/chat', { model: 'llama3.2', messages: [] })
  t.equal(load.type, 'application/json; charset=utf-8')
  t.match(json(load), { model: 'llama3.2', message: { role: 'assistant', content: '' }, done: true, done_reason: 'load' })
  t.match(json(await call(fake, 'POST', '/api/generate', { model: 'llama3.2' })), { response: '', done: true, done_reason: 'load' })
  t.match(json(await call(fake, 'POST', '/api/generate', { model: 'llama3.2', keep_alive: 0 })), { response: '', done: true, done_reason: 'unload' })
  t.same(json<{ models: unknown[] }>(await call(fake, 'GET', '/api/ps')).models, [], 'unloaded')
  t.match(json(await call(fake, 'POST', '/api/chat', { model: 'llama3.2', messages: [], keep_alive: '0s' })), { done_reason: 'unload' })
})

void t.test('embeddings are deterministic, normalised float32', async (t) => {
  const fake = await start(t)
  const other = await start(t)
  type Embed = { model: string; embeddings: number[][]; total_duration: number; load_duration: number; prompt_eval_count: number }
  const one = json<Embed>(await call(fake, 'POST', '/api/embed', { model: 'nomic-embed-text', input: 'llamas are social animals' }))
  t.match(one, { model: 'nomic-embed-text', total_duration: Number, load_duration: Number, prompt_eval_count: Number })
  t.equal(one.embeddings.length, 1)
  const v = one.embeddings[0] ?? []
  t.equal(v.length, 768)
  t.ok(Math.abs(norm(v) - 1) < 1e-5, 'L2-normalised')
  t.ok(v.every((x) => Math.abs(Math.fround(x) - x) <= Math.abs(x) * 1e-7), 'float32 precision')
  t.ok(v.every((x) => x.toExponential().replace(/^-|\.|e.*$/g, '').length <= 9), 'written with float32 digits, like Go')

  const batch = json<Embed>(await call(other, 'POST', '/api/embed', { model: 'nomic-embed-text:latest', input: ['other text', 'llamas are social animals'] }))
  t.equal(batch.embeddings.length, 2)
  t.same(batch.embeddings[1], v, 'same vector for the same (model, text), on another fake and in a batch')
  t.not(batch.embeddings[0]?.[0], v[0])
  const llama = json<Embed>(await call(fake, 'POST', '/api/embed', { model: 'llama3.2', input: 'llamas are social animals' }))
  t.not(llama.embeddings[0]?.[0], v[0], 'the model changes the vector')

  const short = json<Embed>(await call(fake, 'POST', '/api/embed', { model: 'nomic-embed-text', input: 'llamas are social animals', dimensions: 64 }))
  t.equal(short.embeddings[0]?.length, 64)
  t.ok(Math.abs(norm(short.embeddings[0] ?? []) - 1) < 1e-5, 'truncated then re-normalised')

  const legacy = json<{ embedding: number[] }>(await call(fake, 'POST', '/api/embeddings', { model: 'nomic-embed-text', prompt: 'llamas are social animals' }))
  t.equal(legacy.embedding.length, 768)
  t.ok(norm(legacy.embedding) > 2, 'the legacy endpoint is not normalised')
  const n = norm(legacy.embedding)
  t.ok(legacy.embedding.every((x, i) => Math.abs(x / n - (v[i] ?? 0)) < 1e-6), 'and normalising it gives /api/embed')

  t.same(json(await call(fake, 'POST', '/api/embed', { model: 'nomic-embed-text', input: [] })), { model: 'nomic-embed-text', embeddings: [] }, 'empty input only loads')
  t.same(json(await call(fake, 'POST', '/api/embeddings', { model: 'nomic-embed-text' })), { embedding: [] })
  for (const input of [42, [1, 2], { text: 'x' }]) {
    const bad = await call(fake, 'POST', '/api/embed', { model: 'nomic-embed-text', input })
    t.equal(bad.status, 400)
    t.same(json(bad), { error: 'invalid input type' })
  }
})

void t.test('errors have Ollama status codes and bodies', async (t) => {
  const fake = await start(t)
  for (const path of ['/api/generate', '/api/chat', '/api/embed', '/api/show', '/api/pull']) {
    const empty = await call(fake, 'POST', path)
    t.equal(empty.status, 400, `${path} without body`)
    t.same(json(empty), { error: 'missing request body' })
  }
  const bad = await call(fake, 'POST', '/api/generate', '{"model": llama')
  t.equal(bad.status, 400)
  t.equal(bad.type, 'application/json; charset=utf-8')
  t.match(json(bad), { error: /^invalid character 'l'/ })
  t.match(json(await call(fake, 'POST', '/api/generate', '{"model":')), { error: 'unexpected EOF' })
  t.match(json(await call(fake, 'POST', '/api/generate', { model: 7 })), { error: /cannot unmarshal number into Go struct field GenerateRequest.model of type string/ })
  t.same(json(await call(fake, 'POST', '/api/generate', { prompt: 'hi' })), { error: 'model is required' })
  t.same(json(await call(fake, 'POST', '/api/chat', { messages: [] })), { error: 'model is required' })

  const unknown = await call(fake, 'POST', '/api/generate', { model: 'nope', prompt: 'hi' })
  t.equal(unknown.status, 404)
  t.same(json(unknown), { error: 'model "nope" not found, try pulling it first' })
  const embedOnly = await call(fake, 'POST', '/api/generate', { model: 'nomic-embed-text', prompt: 'hi' })
  t.equal(embedOnly.status, 400)
  t.same(json(embedOnly), { error: '"nomic-embed-text" does not support generate' })
  t.same(json(await call(fake, 'POST', '/api/chat', { model: 'nomic-embed-text', messages: [{ role: 'user', content: 'hi' }] })), { error: '"nomic-embed-text" does not support chat' })

  const wrongMethod = await call(fake, 'GET', '/api/generate')
  t.equal(wrongMethod.status, 405)
  t.match(wrongMethod.type, /^text\/plain/)
  t.equal(wrongMethod.text, '405 method not allowed')
  t.equal((await call(fake, 'DELETE', '/api/tags')).status, 405)
  const nowhere = await call(fake, 'GET', '/api/nope')
  t.equal(nowhere.status, 404)
  t.equal(nowhere.text, '404 page not found')
})

void t.test('slots: extra requests queue FIFO, beyond maxQueue they get 503', async (t) => {
  const fake = await start(t, { numParallel: 1, maxQueue: 1, tokenDelayMs: 10 })
  const body = JSON.stringify({ model: 'llama3.2', prompt: 'hi' })
  // Headers come with the first token, so once they are here the first request holds the slot.
  const first = await request(fake.url + '/api/generate', { method: 'POST', body })
  const second = request(fake.url + '/api/generate', { method: 'POST', body })
  await fake.waitUntil((f) => f.queued === 1)
  const third = await call(fake, 'POST', '/api/generate', { model: 'llama3.2', prompt: 'hi' })
  t.equal(third.status, 503)
  t.same(json(third), { error: SERVER_BUSY_ERROR })
  t.equal((await call(fake, 'GET', '/api/tags')).status, 200, 'non-inference requests do not queue')
  const tokens = (ndjson: string): string => ndjson.trim().split('\n').map((l) => (JSON.parse(l) as { response: string }).response).join('')
  const firstText = tokens(await first.body.text())
  const secondRes = await second
  t.equal(secondRes.statusCode, 200)
  t.equal(tokens(await secondRes.body.text()), firstText, 'the queued request got its answer once the first was done')
  t.equal(fake.queued, 0)
})

void t.test('behaviours', async (t) => {
  await t.test('refuse resets the connection, once', async (t) => {
    const fake = await start(t)
    fake.script({ kind: 'refuse' })
    const err = await call(fake, 'GET', '/api/tags').catch((e: unknown) => e)
    t.ok(['ECONNRESET', 'UND_ERR_SOCKET'].includes(errorCode(err)), `client saw ${errorCode(err)}`)
    t.equal((await call(fake, 'GET', '/api/tags')).status, 200)
    t.equal(fake.count('/api/tags'), 2, 'the refused request was recorded')
    t.equal(fake.closedEarly, 0, 'a refusal is not the client going away')
  })

  await t.test('hang never sends headers and notices the client leaving', async (t) => {
    const fake = await start(t)
    fake.script({ kind: 'hang' }, { path: '/api/generate' })
    const agent = new Agent({ headersTimeout: 150 })
    t.teardown(() => agent.close())
    const pending = call(fake, 'POST', '/api/generate', { model: 'llama3.2', prompt: 'hi' }, { dispatcher: agent })
    await fake.waitForRequests(1, '/api/generate')
    t.equal(fake.inFlight, 1)
    const err = await pending.catch((e: unknown) => e)
    t.equal(errorCode(err), 'UND_ERR_HEADERS_TIMEOUT')
    await fake.waitForClosedEarly(1)
    await fake.waitUntil((f) => f.inFlight === 0)
    t.pass('the hung request ended when the client left')
  })

  await t.test('die-after-chunks cuts a stream mid-body', async (t) => {
    const fake = await start(t)
    fake.script({ kind: 'die-after-chunks', chunks: 2 })
    const res = await request(fake.url + '/api/generate', { method: 'POST', body: JSON.stringify({ model: 'llama3.2', prompt: 'hi' }) })
    t.equal(res.statusCode, 200, 'headers were sent')
    const frames: Line[] = []
    const err = await readFrames(res.body, frames).catch((e: unknown) => e)
    t.type(err, Error, 'the body fails')
    t.equal(frames.length, 2)
    t.match(JSON.parse(frames[1]?.text ?? '{}'), { done: false })

    fake.script({ kind: 'die-after-chunks', chunks: 0 })
    const none = await request(fake.url + '/api/chat', { method: 'POST', body: JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'x' }] }) })
    t.equal(none.statusCode, 200)
    t.type(await none.body.text().catch((e: unknown) => e), Error)

    fake.script({ kind: 'die-after-chunks', chunks: 1 })
    const whole = await request(fake.url + '/api/tags')
    t.type(await whole.body.text().catch((e: unknown) => e), Error, 'a non-streamed body is cut too')
    t.equal(fake.closedEarly, 0)
  })

  await t.test('fail-progress ends a pull with an error line (200), or 500 with stream:false; the model is not added', async (t) => {
    const fake = await start(t)
    fake.script({ kind: 'fail-progress', lines: 2 }, { path: '/api/pull' })
    const streamed = await call(fake, 'POST', '/api/pull', { model: 'qwen3:0.6b' })
    t.equal(streamed.status, 200)
    const lines = streamed.text.trim().split('\n').map((l) => JSON.parse(l) as Json)
    t.equal(lines.length, 3, 'two progress lines, then the error')
    t.same(lines.at(-1), { error: 'pull model manifest: file does not exist' })
    fake.script({ kind: 'fail-progress', lines: 0, error: 'max retries exceeded' }, { path: '/api/pull' })
    const single = await call(fake, 'POST', '/api/pull', { model: 'qwen3:0.6b', stream: false })
    t.equal(single.status, 500)
    t.same(json(single), { error: 'max retries exceeded' })
    t.notOk(json<{ models: { name: string }[] }>(await call(fake, 'GET', '/api/tags')).models.some((m) => m.name === 'qwen3:0.6b'))
  })

  await t.test('modifiedAt sets modified_at in /api/tags', async (t) => {
    const old = '2024-01-02T03:04:05.000Z'
    const fake = await start(t, { models: [{ name: 'a', modifiedAt: old }, { name: 'b' }] })
    const { models } = json<{ models: { name: string; modified_at: string }[] }>(await call(fake, 'GET', '/api/tags'))
    t.same(models.map((m) => [m.name, m.modified_at === old]), [['b:latest', false], ['a:latest', true]], 'newest first')
  })

  await t.test('status answers at once, with Ollama or OpenAI error bodies', async (t) => {
    const fake = await start(t)
    fake.script({ kind: 'status', status: 503 }, { path: '/api/chat', times: 2 })
    fake.script({ kind: 'status', status: 500, error: 'llama runner process has terminated' }, { path: '/v1/chat/completions' })
    t.equal((await call(fake, 'GET', '/api/tags')).status, 200, 'other paths are not affected')
    const chat = { model: 'llama3.2', messages: [{ role: 'user', content: 'x' }], stream: false }
    for (let i = 0; i < 2; i++) {
      const busy = await call(fake, 'POST', '/api/chat', chat)
      t.equal(busy.status, 503)
      t.same(json(busy), { error: SERVER_BUSY_ERROR })
    }
    t.equal((await call(fake, 'POST', '/api/chat', chat)).status, 200, 'times ran out')
    const openai = await call(fake, 'POST', '/v1/chat/completions', chat)
    t.equal(openai.status, 500)
    t.same(json(openai), { error: { message: 'llama runner process has terminated', type: 'api_error', param: null, code: null } })
  })

  await t.test('slow paces this request only', async (t) => {
    const fake = await start(t, { tokens: 5 })
    fake.script({ kind: 'slow', tokenDelayMs: 40 })
    const slow = await stream(fake, '/api/generate', { model: 'llama3.2', prompt: 'hi' })
    const spread = (slow.frames.at(-1)?.at ?? 0) - (slow.frames[0]?.at ?? 0)
    t.ok(spread >= 4 * 40 - 10, `slow stream spread ${Math.round(spread)}ms`)
    const fast = await stream(fake, '/api/generate', { model: 'llama3.2', prompt: 'hi' })
    t.ok((fast.frames.at(-1)?.at ?? 0) - fast.startedAt < spread, 'the next one is fast again')
  })

  await t.test('delay-headers holds the first byte', async (t) => {
    const fake = await start(t)
    fake.script({ kind: 'delay-headers', ms: 150 })
    const res = await stream(fake, '/api/generate', { model: 'llama3.2', prompt: 'hi' })
    t.ok(res.headersAt - res.startedAt >= 145, `headers after ${Math.round(res.headersAt - res.startedAt)}ms`)
    t.equal(res.frames.length, 9)
  })

  await t.test('setDefault applies until cleared', async (t) => {
    const fake = await start(t)
    fake.setDefault({ kind: 'status', status: 500 })
    t.same(json(await call(fake, 'GET', '/')), { error: 'internal server error' })
    t.equal((await call(fake, 'GET', '/api/tags')).status, 500)
    fake.script({ kind: 'status', status: 429, error: 'slow down' })
    t.equal((await call(fake, 'GET', '/api/tags')).status, 429, 'scripts win over the default')
    fake.setDefault(undefined)
    t.equal((await call(fake, 'GET', '/api/tags')).status, 200)
  })
})

void t.test('stop refuses connections; restart listens on the same port', async (t) => {
  const fake = await start(t)
  const { port } = fake
  t.equal((await call(fake, 'GET', '/')).status, 200, 'leaves a keep-alive socket in the pool')
  await fake.stop()
  const err = await call(fake, 'GET', '/').catch((e: unknown) => e)
  t.equal(errorCode(err), 'ECONNREFUSED')
  await fake.restart()
  t.equal(fake.port, port)
  t.equal((await call(fake, 'GET', '/')).status, 200)
  await fake.close()
  await fake.close()
  t.equal(errorCode(await call(fake, 'GET', '/').catch((e: unknown) => e)), 'ECONNREFUSED', 'close is stop, idempotent')
})

void t.test('closedEarly counts clients leaving, and their slots are freed', async (t) => {
  const fake = await start(t, { numParallel: 1, tokenDelayMs: 20, tokens: 100 })
  const body = JSON.stringify({ model: 'llama3.2', prompt: 'a long story' })
  const first = await request(fake.url + '/api/generate', { method: 'POST', body })
  const queuedAbort = new AbortController()
  const queued = request(fake.url + '/api/generate', { method: 'POST', body, signal: queuedAbort.signal }).catch((e: unknown) => e)
  await fake.waitUntil((f) => f.queued === 1)
  queuedAbort.abort()
  t.type(await queued, Error)
  await fake.waitForClosedEarly(1)
  t.equal(fake.queued, 0, 'a client leaving the queue leaves it')

  for await (const chunk of first.body) {
    t.ok((chunk as Buffer).length > 0, 'got a first chunk')
    break // leaving the loop destroys the body, and undici closes the socket
  }
  await fake.waitForClosedEarly(2)
  await fake.waitUntil((f) => f.inFlight === 0)
  const next = await call(fake, 'POST', '/api/generate', { model: 'llama3.2', prompt: 'short', stream: false, options: { num_predict: 2 } })
  t.equal(next.status, 200, 'the slot was released')
})

void t.test('pull, push, create, copy and delete', async (t) => {
  const fake = await start(t)
  const pull = await stream(fake, '/api/pull', { model: 'mistral' })
  t.equal(pull.type, 'application/x-ndjson')
  const steps = pull.frames.map((f) => JSON.parse(f.text) as { status: string; digest?: string; total?: number; completed?: number })
  t.same(steps[0], { status: 'pulling manifest' })
  t.match(steps.find((s) => s.completed !== undefined), { status: /^pulling [0-9a-f]{12}$/, digest: /^sha256:[0-9a-f]{64}$/, total: Number, completed: Number })
  t.same(steps.slice(-3), [{ status: 'verifying sha256 digest' }, { status: 'writing manifest' }, { status: 'success' }])
  const names = async (): Promise<string[]> => json<{ models: Array<{ name: string }> }>(await call(fake, 'GET', '/api/tags')).models.map((m) => m.name)
  t.ok((await names()).includes('mistral:latest'), 'pulled models are listed')
  const quiet = await call(fake, 'POST', '/api/pull', { model: 'all-minilm', stream: false })
  t.equal(quiet.type, 'application/json; charset=utf-8')
  t.same(json(quiet), { status: 'success' })

  const push = await stream(fake, '/api/push', { model: 'mistral' })
  t.same(JSON.parse(push.frames.at(-1)?.text ?? '{}'), { status: 'success' })
  t.equal((await call(fake, 'POST', '/api/push', { model: 'nope', stream: false })).status, 404)

  const create = await stream(fake, '/api/create', { model: 'pirate', from: 'llama3.2', system: 'Talk like a pirate.' })
  t.same(JSON.parse(create.frames.at(-1)?.text ?? '{}'), { status: 'success' })
  t.ok((await names()).includes('pirate:latest'))
  t.same(json(await call(fake, 'POST', '/api/create', { model: 'x', stream: false })), { error: "neither 'from' or 'files' was specified" })

  const copy = await call(fake, 'POST', '/api/copy', { source: 'llama3.2', destination: 'llama-copy' })
  t.equal(copy.status, 200)
  t.equal(copy.text, '')
  const digests = json<{ models: Array<{ name: string; digest: string }> }>(await call(fake, 'GET', '/api/tags')).models
  t.equal(digests.find((m) => m.name === 'llama-copy:latest')?.digest, digests.find((m) => m.name === 'llama3.2:latest')?.digest, 'a copy shares the digest')
  const badCopy = await call(fake, 'POST', '/api/copy', { source: 'nope', destination: 'x' })
  t.equal(badCopy.status, 404)
  t.same(json(badCopy), { error: 'model "nope" not found' })

  t.equal((await call(fake, 'DELETE', '/api/delete', { model: 'llama-copy' })).status, 200)
  const again = await call(fake, 'DELETE', '/api/delete', { model: 'llama-copy' })
  t.equal(again.status, 404)
  t.same(json(again), { error: "model 'llama-copy' not found" })
  t.notOk((await names()).includes('llama-copy:latest'))
})

void t.test('blobs are verified while streaming and kept per instance', async (t) => {
  const fake = await start(t)
  const other = await start(t)
  const data = randomBytes(3 * 1024 * 1024)
  const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`
  // Sent in 256 KiB pieces, so the fake must hash a stream rather than one buffer.
  const chunks = (): Readable => Readable.from((function* () {
    for (let i = 0; i < data.length; i += 256 * 1024) yield data.subarray(i, i + 256 * 1024)
  })())
  t.equal((await call(fake, 'HEAD', `/api/blobs/${digest}`)).status, 404)
  const wrong = `sha256:${'0'.repeat(64)}`
  const mismatch = await request(`${fake.url}/api/blobs/${wrong}`, { method: 'POST', body: chunks() })
  t.equal(mismatch.statusCode, 400)
  t.same(await mismatch.body.json(), { error: `digest mismatch, expected "${wrong}", got "${digest}"` })
  const upload = await request(`${fake.url}/api/blobs/${digest}`, { method: 'POST', body: chunks() })
  t.equal(upload.statusCode, 201)
  await upload.body.dump()
  t.equal(fake.requests.at(-1)?.bytes, data.length, 'every byte was counted')
  t.equal(fake.requests.at(-1)?.raw.length, 0, 'and none was buffered')
  t.equal((await call(fake, 'HEAD', `/api/blobs/${digest}`)).status, 200)
  t.equal((await call(fake, 'POST', `/api/blobs/${digest}`, 'ignored')).status, 200, 'already there')
  t.equal((await call(fake, 'GET', `/api/blobs/${digest}`)).status, 405)

  const files = { model: 'imported', files: { 'model.gguf': digest }, stream: false }
  t.same(json(await call(fake, 'POST', '/api/create', files)), { status: 'success' })
  const elsewhere = await call(other, 'POST', '/api/create', files)
  t.equal(elsewhere.status, 400, 'another instance does not have the blob')
  t.match(json(elsewhere), { error: new RegExp(digest) })
})

void t.test('OpenAI-compatible endpoints', async (t) => {
  const fake = await start(t)
  const messages = [{ role: 'user', content: 'hi' }]
  interface Completion { id: string; object: string; model: string; choices: Array<{ index: number; message?: { role: string; content: string }; text?: string; finish_reason: string }>; usage: Json }
  const chat = await call(fake, 'POST', '/v1/chat/completions', { model: 'llama3.2', messages })
  const completion = json<Completion>(chat)
  t.match(completion, { id: /^chatcmpl-/, object: 'chat.completion', created: Number, model: 'llama3.2', system_fingerprint: 'fp_ollama', usage: { prompt_tokens: Number, completion_tokens: 8, total_tokens: Number } })
  t.match(completion.choices, [{ index: 0, message: { role: 'assistant', content: /\S/ }, finish_reason: 'stop' }])

  const sse = await stream(fake, '/v1/chat/completions', { model: 'llama3.2', messages, stream: true, stream_options: { include_usage: true } }, '\n\n')
  t.equal(sse.type, 'text/event-stream')
  t.equal(sse.frames.at(-1)?.text, 'data: [DONE]')
  const events = sse.frames.slice(0, -1).map((f) => JSON.parse(f.text.replace(/^data: /, '')) as { object: string; choices: Array<{ delta: { content: string }; finish_reason: string | null }>; usage?: Json })
  t.ok(events.every((e) => e.object === 'chat.completion.chunk'))
  t.match(events.at(-1), { choices: [], usage: { completion_tokens: 8 } })
  t.equal(events.at(-2)?.choices[0]?.finish_reason, 'stop')
  t.equal(events.slice(0, -1).map((e) => e.choices[0]?.delta.content).join(''), completion.choices[0]?.message?.content, 'streamed deltas add up to the answer')

  const limited = json<Completion>(await call(fake, 'POST', '/v1/completions', { model: 'llama3.2', prompt: 'Once', max_tokens: 2 }))
  t.match(limited, { object: 'text_completion', choices: [{ text: String, index: 0, finish_reason: 'length' }], usage: { completion_tokens: 2 } })
  const textStream = await stream(fake, '/v1/completions', { model: 'llama3.2', prompt: 'Once', stream: true }, '\n\n')
  t.equal(textStream.frames.length, 10, '8 tokens, the finish chunk and [DONE]')

  const embedding = json<{ object: string; data: Array<{ object: string; embedding: number[]; index: number }>; model: string; usage: Json }>(
    await call(fake, 'POST', '/v1/embeddings', { model: 'nomic-embed-text', input: ['a', 'b'] }))
  t.match(embedding, { object: 'list', model: 'nomic-embed-text', usage: { prompt_tokens: Number, total_tokens: Number } })
  t.same(embedding.data.map((d) => [d.object, d.index, d.embedding.length]), [['embedding', 0, 768], ['embedding', 1, 768]])
  const native = json<{ embeddings: number[][] }>(await call(fake, 'POST', '/api/embed', { model: 'nomic-embed-text', input: 'a' }))
  t.same(embedding.data[0]?.embedding, native.embeddings[0], 'the same vector as /api/embed')
  const b64 = json<{ data: Array<{ embedding: string }> }>(await call(fake, 'POST', '/v1/embeddings', { model: 'nomic-embed-text', input: 'a', encoding_format: 'base64' }))
  const decoded = new Float32Array(Buffer.from(b64.data[0]?.embedding ?? '', 'base64').buffer.slice(0))
  t.equal(decoded.length, 768)
  t.equal(decoded[0], Math.fround(native.embeddings[0]?.[0] ?? NaN))

  const models = json<{ object: string; data: Array<{ id: string; object: string; owned_by: string }> }>(await call(fake, 'GET', '/v1/models'))
  t.equal(models.object, 'list')
  t.match(models.data, [{ id: String, object: 'model', created: Number, owned_by: 'library' }, Object])
  t.match(json(await call(fake, 'GET', '/v1/models/llama3.2')), { id: 'llama3.2', object: 'model' })

  const missing = await call(fake, 'GET', '/v1/models/nope')
  t.equal(missing.status, 404)
  t.same(json(missing), { error: { message: "model 'nope' not found", type: 'not_found_error', param: null, code: null } })
  const noModel = await call(fake, 'POST', '/v1/chat/completions', { messages })
  t.equal(noModel.status, 400)
  t.match(json(noModel), { error: { type: 'invalid_request_error', message: 'model is required' } })
  t.match(json(await call(fake, 'POST', '/v1/chat/completions', { model: 'nope', messages })), { error: { type: 'not_found_error' } })
})

void t.test('the official ollama client works against the fake', async (t) => {
  const fake = await start(t)
  const ollama = new Ollama({ host: fake.url })
  t.ok((await ollama.list()).models.some((m) => m.name === 'llama3.2:latest'))
  t.same((await ollama.show({ model: 'llama3.2' })).capabilities, ['completion'])
  let text = ''
  let final: unknown
  for await (const part of await ollama.generate({ model: 'llama3.2', prompt: 'hi', stream: true })) {
    text += part.response
    if (part.done) final = part
  }
  t.match(final, { done: true, done_reason: 'stop', eval_count: 8 })
  t.equal((await ollama.generate({ model: 'llama3.2', prompt: 'hi' })).response, text)
  t.match(await ollama.chat({ model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }] }), { message: { role: 'assistant', content: /\S/ } })
  t.equal((await ollama.embed({ model: 'nomic-embed-text', input: 'x' })).embeddings[0]?.length, 768)
  const statuses: string[] = []
  for await (const p of await ollama.pull({ model: 'tinyllama', stream: true })) statuses.push(p.status)
  t.equal(statuses.at(-1), 'success')
  const err = await ollama.generate({ model: 'nope', prompt: 'hi' }).catch((e: unknown) => e)
  t.match(err, { name: 'ResponseError', status_code: 404, error: 'model "nope" not found, try pulling it first' })
})

void t.test('requests are recorded as received', async (t) => {
  const fake = await start(t)
  await call(fake, 'POST', '/api/generate?trace=1', { model: 'llama3.2', prompt: 'hi', stream: false }, {
    headers: { 'x-forwarded-for': '203.0.113.7', 'content-type': 'application/json', 'x-custom': 'yes' },
  })
  await call(fake, 'GET', '/api/tags')
  const [generate, tags] = fake.requests
  t.match(generate, { method: 'POST', path: '/api/generate?trace=1', body: { model: 'llama3.2', prompt: 'hi', stream: false }, remoteAddress: '127.0.0.1' })
  t.equal(generate?.headers['x-forwarded-for'], '203.0.113.7')
  t.equal(generate?.headers.host, `127.0.0.1:${fake.port}`)
  t.ok(generate?.rawHeaders.includes('x-custom'))
  t.equal(generate?.raw.toString(), JSON.stringify({ model: 'llama3.2', prompt: 'hi', stream: false }))
  t.match(tags, { method: 'GET', path: '/api/tags', body: undefined })
  t.equal(fake.count(), 2)
  t.equal(fake.count('/api/generate'), 1, 'count matches the pathname, without the query')
  await fake.waitForRequests(2)
  t.equal(fake.inFlight, 0)
  t.equal(fake.closedEarly, 0)
})
