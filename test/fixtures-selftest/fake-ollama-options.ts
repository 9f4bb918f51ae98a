// The fake's deadlines and the options that `corral demo` and the benchmarks use.
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { request } from 'undici'
import { startFakeOllama, type FakeOllama, type FakeOllamaOptions } from '../fixtures/fake-ollama.js'

async function start(t: { teardown(fn: () => unknown): void }, opts?: FakeOllamaOptions): Promise<FakeOllama> {
  const fake = await startFakeOllama(opts)
  t.teardown(() => fake.close())
  return fake
}

async function post(fake: FakeOllama, path: string, body: unknown): Promise<{ status: number; text: string; headers: Record<string, unknown> }> {
  const res = await request(fake.url + path, { method: 'POST', body: JSON.stringify(body) })
  return { status: res.statusCode, text: await res.body.text(), headers: res.headers }
}

t.test('waitUntil rejects at its deadline, naming what was awaited and the state', async (t) => {
  const fake = await start(t)
  const started = performance.now()
  await t.rejects(fake.waitUntil((f) => f.inFlight === 3, { timeoutMs: 50 }), /timed out after 50 ms waiting until \(?f\)? ?=> ?f\.inFlight ?=== ?3 \(requests=0 inFlight=0/)
  t.ok(performance.now() - started < 2000, 'rejects near the deadline')
  await t.rejects(fake.waitForRequests(2, '/api/chat', { timeoutMs: 20 }), /waiting until 2 requests for \/api\/chat/)
  await t.rejects(fake.waitForClosedEarly(1, { timeoutMs: 20 }), /waiting until closedEarly >= 1/)
  await t.rejects(fake.waitUntil(() => false, { timeoutMs: 20, what: 'the moon' }), /waiting until the moon/)
})

t.test('the default deadline is the fake option waitTimeoutMs; a wait that is met clears its timer', async (t) => {
  const fake = await start(t, { waitTimeoutMs: 30 })
  await t.rejects(fake.waitForRequests(1), /timed out after 30 ms/)
  const waiting = fake.waitForRequests(1, undefined, { timeoutMs: 5000 })
  await post(fake, '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: false })
  await waiting
  t.equal(fake.completed, 1, 'completed counts finished answers')
})

t.test('embeddingPool answers like computed vectors, deterministically, in Ollama shape', async (t) => {
  const pooled = await start(t, { embeddingPool: 8 })
  const a = JSON.parse((await post(pooled, '/api/embed', { model: 'nomic-embed-text', input: ['x', 'y'] })).text) as { embeddings: number[][]; model: string; prompt_eval_count: number }
  const b = JSON.parse((await post(pooled, '/api/embed', { model: 'nomic-embed-text', input: ['y'] })).text) as { embeddings: number[][] }
  t.equal(a.model, 'nomic-embed-text')
  t.equal(a.embeddings.length, 2)
  t.equal(a.embeddings[0]?.length, 768)
  t.same(a.embeddings[1], b.embeddings[0], 'the same input gets the same vector')
  const norm = Math.sqrt((a.embeddings[0] ?? []).reduce((s, x) => s + x * x, 0))
  t.ok(Math.abs(norm - 1) < 1e-5, 'normalised')
  t.equal(a.prompt_eval_count, 2)
  const legacy = JSON.parse((await post(pooled, '/api/embeddings', { model: 'nomic-embed-text', prompt: 'x' })).text) as { embedding: number[] }
  t.equal(legacy.embedding.length, 768)
})

t.test('promptDelayMs and embedDelayMs take time in the slot; setSpeed scales new requests', async (t) => {
  const fake = await start(t, { promptDelayMs: 60, tokenDelayMs: 0, embedDelayMs: 20, tokens: 2 })
  let started = performance.now()
  await post(fake, '/api/generate', { model: 'llama3.2', prompt: 'hi', stream: false })
  t.ok(performance.now() - started >= 55, 'the prompt is evaluated before the first token')
  started = performance.now()
  await post(fake, '/api/embed', { model: 'nomic-embed-text', input: ['a', 'b', 'c'] })
  t.ok(performance.now() - started >= 55, 'three inputs cost three times embedDelayMs')
  fake.setSpeed(2)
  started = performance.now()
  await post(fake, '/api/generate', { model: 'llama3.2', prompt: 'hi', stream: false })
  t.ok(performance.now() - started >= 115, 'twice as slow')
})

t.test('embedFurtherInputShare: inputs after the first cost a share of embedDelayMs; frozen durations follow', async (t) => {
  // 100 ms * (1 + 0.25 * 8) = 300 ms; a full embedDelayMs per input would be 900: the bounds leave
  // half a second for a busy machine either way.
  const fake = await start(t, { tokenDelayMs: 0, embedDelayMs: 100, embedFurtherInputShare: 0.25, frozenTimings: true })
  const started = performance.now()
  const reply = JSON.parse((await post(fake, '/api/embed', { model: 'nomic-embed-text', input: Array.from({ length: 9 }, (_, i) => `x${i}`) })).text) as { total_duration: number }
  const took = performance.now() - started
  t.ok(took >= 295 && took < 800, `nine inputs cost 100 ms * (1 + 0.25 * 8) = 300 ms (took ${took.toFixed(0)} ms)`)
  t.equal(reply.total_duration, 300e6, 'the nominal duration uses the same cost')
})

t.test('slotsPerModel: each model has its own slots and queue; the default shares one', async (t) => {
  /** One slot; an embedding runs, then a chat comes: where is the chat while the embedding runs? */
  const chatWhileEmbedding = async (opts: FakeOllamaOptions): Promise<{ inFlight: number; queued: number }> => {
    const fake = await start(t, { numParallel: 1, tokenDelayMs: 0, promptDelayMs: 10, embedDelayMs: 150, ...opts })
    const embedding = post(fake, '/api/embed', { model: 'nomic-embed-text', input: ['a'] })
    await fake.waitUntil((f) => f.inFlight === 1, { what: 'the embedding under way' })
    const chat = post(fake, '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], stream: false })
    await fake.waitUntil((f) => f.inFlight === 2, { what: 'the chat arrived' })
    const state = { inFlight: fake.inFlight, queued: fake.queued }
    await Promise.all([embedding, chat])
    return state
  }
  t.same(await chatWhileEmbedding({ slotsPerModel: true }), { inFlight: 2, queued: 0 }, 'a chat does not wait for the embedding runner')
  t.same(await chatWhileEmbedding({}), { inFlight: 2, queued: 1 }, 'without the option it queues behind the embedding')

  const fake = await start(t, { numParallel: 1, tokenDelayMs: 0, embedDelayMs: 100, slotsPerModel: true })
  const embeds = [post(fake, '/api/embed', { model: 'nomic-embed-text', input: ['a'] }), post(fake, '/api/embed', { model: 'nomic-embed-text', input: ['b'] })]
  await fake.waitUntil((f) => f.queued === 1, { what: 'the second embedding queued in its runner' })
  fake.setNumParallel(2)
  t.equal(fake.queued, 0, 'setNumParallel applies to every runner')
  await Promise.all(embeds)
})

t.test('headers go on every answer; recordRequests:false counts without keeping', async (t) => {
  const seen: string[] = []
  const fake = await start(t, { headers: { 'X-Instance': 'n1' }, recordRequests: false, onRequest: (r) => seen.push(r.path) })
  const reply = await post(fake, '/api/generate', { model: 'llama3.2', prompt: 'hi', stream: false })
  const missing = await post(fake, '/api/nothing', {})
  t.equal(reply.headers['x-instance'], 'n1')
  t.equal(missing.headers['x-instance'], 'n1')
  t.equal(fake.requests.length, 0, 'nothing kept')
  t.equal(fake.count(), 2)
  t.equal(fake.count('/api/generate'), 1)
  t.same(seen, ['/api/generate', '/api/nothing'])
})

t.test('frozenTimings: equal requests get byte-identical answers, with nominal durations', async (t) => {
  const fake = await start(t, { frozenTimings: true, tokenDelayMs: 1, tokens: 4 })
  const generate = { model: 'llama3.2', prompt: 'why is the sky blue?', stream: false }
  const a = await post(fake, '/api/generate', generate)
  const b = await post(fake, '/api/generate', generate)
  t.equal(a.text, b.text)
  const body = JSON.parse(a.text) as { created_at: string; eval_duration: number }
  t.equal(body.created_at, '2026-01-15T10:21:09.538216Z')
  t.equal(body.eval_duration, 4_000_000, 'four tokens of 1 ms')
  const embed = { model: 'nomic-embed-text', input: ['one', 'two'] }
  t.equal((await post(fake, '/api/embed', embed)).text, (await post(fake, '/api/embed', embed)).text)
})
