/**
 * Bulk embedding batches sent in parts (balancer.priority.bulk_part_size), through a real corral
 * in front of fake Ollamas: the parts reach the instances as separate requests of the configured
 * size and the client gets one answer equal to the unsplit one (/api/embed and /v1/embeddings);
 * only bulk batches are cut, only while interactive requests come, at most two of three batches
 * in flight, only over instances with the model's digest; a query queued while the parts run is served between them; a failing part gives
 * one error and nothing is cached; a partly cached batch works and caches its parts' items; a
 * client that leaves cancels the parts; a reload changes the part size.
 */
import http from 'node:http'
import t from 'tap'
import { startFakeOllama, type FakeOllama, type RecordedRequest } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { startCorral } from '../fixtures/start-corral.js'
import { waitFor } from '../fixtures/wait-for.js'
import { configFromObject } from '../../src/config/load-config.js'

const EMBED = 'nomic-embed-text'
let n = 0
const texts = (count: number): string[] => Array.from({ length: count }, () => `chunk ${n++} of a document about rivers`)
const priority = (more: Record<string, unknown> = {}): Record<string, unknown> => ({ bulk_batch_size: 4, bulk_part_size: 4, ...more })

/** An interactive model request: from now on, for 10 s, bulk batches go in parts. */
async function interactive(url: string): Promise<void> {
  const res = await send(url, 'POST', '/api/generate', { model: 'llama3.2', prompt: `hello ${n++}`, stream: false })
  if (res.status !== 200) throw new Error(`interactive request: ${res.status} ${res.text}`)
}

/** The inputs of each /api/embed (or /v1/embeddings) request an instance received, in order. */
function embedInputs(fake: FakeOllama, path = '/api/embed'): string[][] {
  return fake.requests.filter((r: RecordedRequest) => r.path === path).map((r) => (r.body as { input: string[] }).input)
}

/** The text of an /api/embed answer's `embeddings` array, as sent. */
function embeddingsText(text: string): string {
  const from = text.indexOf('"embeddings":')
  return text.slice(from, text.indexOf('],"total_duration"', from) + 1)
}

async function queued(url: string): Promise<{ interactive: number; bulk: number; depth: number }> {
  const stats = (await send(url, 'GET', '/api/load-balancer-stats')).json as {
    queue_depth: number
    queue: { interactive: { queued: number }; bulk: { queued: number } }
  }
  return { interactive: stats.queue.interactive.queued, bulk: stats.queue.bulk.queued, depth: stats.queue_depth }
}

t.test('a 32-input bulk batch reaches the instances as parts and comes back as the unsplit answer', async (t) => {
  const fakes = [await startFakeOllama({ name: 'a' }), await startFakeOllama({ name: 'b' })]
  t.teardown(() => Promise.all(fakes.map((f) => f.close())))
  const { url, logs } = await startCorral(t, fakes.map((f) => f.url), { cache: { enabled: false }, balancer: { priority: priority({ bulk_part_size: 8 }) } })
  await interactive(url)
  const input = texts(32)
  const got = await send(url, 'POST', '/api/embed', { model: EMBED, input })
  t.equal(got.status, 200)
  const parts = fakes.flatMap((f) => embedInputs(f))
  t.same(parts.map((p) => p.length), [8, 8, 8, 8], 'four parts of 8 inputs')
  t.same(parts.flat().sort(), [...input].sort(), 'every input sent once')
  const whole = await send(fakes[0]!.url, 'POST', '/api/embed', { model: EMBED, input })
  t.equal(embeddingsText(got.text), embeddingsText(whole.text), 'the embeddings are byte for byte the unsplit answer, in input order')
  const body = got.json as Record<string, unknown>
  t.same(Object.keys(body), ['model', 'embeddings', 'total_duration', 'load_duration', 'prompt_eval_count'], "Ollama's shape")
  t.equal(body.model, EMBED)
  t.equal(body.prompt_eval_count, (whole.json as Record<string, unknown>).prompt_eval_count, 'prompt_eval_count summed over the parts')
  t.ok(typeof body.total_duration === 'number' && body.total_duration > 0)
  t.equal(got.headers['content-type'], 'application/json; charset=utf-8')
  const line = await waitFor('the request log line', () => logs.find((l) => l.msg === 'request' && l.route === 'embed' && l.parts !== undefined))
  t.equal(line.parts, 4, 'the log line says how many parts')

  for (const encoding of ['float', 'base64']) {
    const openai = texts(12)
    const before = fakes.map((f) => embedInputs(f, '/v1/embeddings').length)
    const res = await send(url, 'POST', '/v1/embeddings', { model: EMBED, input: openai, encoding_format: encoding })
    t.equal(res.status, 200)
    const sent = fakes.flatMap((f, i) => embedInputs(f, '/v1/embeddings').slice(before[i]))
    t.same(sent.map((p) => p.length), [6, 6], `${encoding}: two parts of 6 (12 in parts of at most 8)`)
    const direct = await send(fakes[1]!.url, 'POST', '/v1/embeddings', { model: EMBED, input: openai, encoding_format: encoding })
    t.same(res.json, direct.json, `${encoding}: the OpenAI answer, indices over the batch, usage summed`)
    const data = (d: string): string => d.slice(d.indexOf('"data":'), d.indexOf('],"model"') + 1)
    t.equal(data(res.text), data(direct.text), `${encoding}: the data items byte for byte`)
  }
})

t.test('only bulk batches, only while interactive requests come, never with bulk_part_size 0', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url], { cache: { enabled: false }, balancer: { priority: priority() } })
  const batch = (): Record<string, unknown> => ({ model: EMBED, input: texts(16) })
  t.equal((await send(url, 'POST', '/api/embed', batch())).status, 200)
  t.same(embedInputs(fake).map((p) => p.length), [16], 'no interactive request came: the batch goes whole')
  await interactive(url)
  t.equal((await send(url, 'POST', '/api/embed', batch(), { 'x-corral-priority': 'interactive' })).status, 200)
  t.same(embedInputs(fake).map((p) => p.length), [16, 16], 'an interactive batch is never cut')
  t.equal((await send(url, 'POST', '/api/embed', batch())).status, 200)
  t.same(embedInputs(fake).map((p) => p.length), [16, 16, 4, 4, 4, 4], 'a bulk batch while interactive requests come: parts of 4')
  t.equal((await send(url, 'POST', '/api/embed', { model: EMBED, input: texts(4) })).status, 200)
  t.same(embedInputs(fake).length, 7, 'a batch no larger than a part goes whole')

  const reload = corral.reload(
    configFromObject({ listen: '127.0.0.1:0', log: { level: 'info' }, instances: [{ url: fake.url, name: 'i0' }], cache: { enabled: false }, balancer: { priority: priority({ bulk_part_size: 0 }) } }).config,
  )
  t.equal(reload.status, 'reloaded')
  await interactive(url)
  t.equal((await send(url, 'POST', '/api/embed', batch())).status, 200)
  t.same(embedInputs(fake).slice(7).map((p) => p.length), [16], 'reloaded to 0: never cut')
})

t.test('of the batches in flight, at most two in three go in parts; the others go whole', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], {
    instances: [{ url: fake.url, name: 'i0', max_concurrency: 16 }],
    cache: { enabled: false },
    balancer: { priority: priority() },
  })
  await interactive(url)
  // The fake holds every request in its queue until the test lets them run: all three batches are in flight.
  fake.setNumParallel(0)
  const batches = [texts(8), texts(8), texts(8)]
  const answers: Promise<Awaited<ReturnType<typeof send>>>[] = []
  for (const [i, input] of batches.entries()) {
    answers.push(send(url, 'POST', '/api/embed', { model: EMBED, input }))
    await fake.waitUntil((f) => f.queued === [2, 4, 5][i], { what: `batch ${i + 1} at the instance` })
  }
  fake.setNumParallel(8)
  for (const answer of await Promise.all(answers)) t.equal(answer.status, 200)
  t.same(embedInputs(fake).map((p) => p.length), [4, 4, 4, 4, 8], 'two batches in parts, the third whole')
  t.equal(embedInputs(fake).length, 5)
})

t.test('parts go only to instances with the digest the cache keys use', async (t) => {
  const a = await startFakeOllama({ name: 'a' })
  const b = await startFakeOllama({ name: 'b', models: [{ name: 'llama3.2' }, { name: EMBED, embedding: true, digest: 'f'.repeat(64) }] })
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const { url } = await startCorral(t, [a.url, b.url], { cache: { enabled: false }, balancer: { policy: 'round-robin', priority: priority() } })
  await interactive(url)
  t.equal((await send(url, 'POST', '/api/embed', { model: EMBED, input: texts(16) })).status, 200)
  t.same(embedInputs(a).map((p) => p.length), [4, 4, 4, 4], 'every part on the instance whose digest is the fleet\'s')
  t.equal(embedInputs(b).length, 0, 'none on the instance with another digest of the model')
})

t.test('an interactive request queued while the parts run is served between two parts', async (t) => {
  const fake = await startFakeOllama({ numParallel: 1 })
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], {
    instances: [{ url: fake.url, name: 'i0', max_concurrency: 1 }],
    cache: { enabled: false },
    balancer: { priority: priority() },
  })
  await interactive(url)
  // The fake holds the first part in its own queue until the test lets it run.
  fake.setNumParallel(0)
  const input = texts(8)
  const batch = send(url, 'POST', '/api/embed', { model: EMBED, input })
  await fake.waitUntil((f) => f.queued === 1, { what: 'the first part at the instance' })
  await waitFor('the second part queued in corral', async () => (await queued(url)).bulk === 1)
  const query = send(url, 'POST', '/api/embed', { model: EMBED, input: ['what is a delta?'] })
  await waitFor('the query queued in corral', async () => (await queued(url)).interactive === 1)
  fake.setNumParallel(1)
  const [whole, one] = await Promise.all([batch, query])
  t.equal(whole.status, 200)
  t.equal(one.status, 200)
  t.same(embedInputs(fake), [input.slice(0, 4), ['what is a delta?'], input.slice(4)], 'part, query, part')
  t.equal((whole.json as { embeddings: unknown[] }).embeddings.length, 8)
})

t.test('a failing part gives the client one error in Ollama\'s shape, and nothing is cached', async (t) => {
  const fake = await startFakeOllama({ numParallel: 1 })
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], {
    instances: [{ url: fake.url, name: 'i0', max_concurrency: 1 }],
    balancer: { priority: priority() },
  })
  await interactive(url)
  const input = texts(8)
  fake.script({ kind: 'status', status: 500, error: 'the runner crashed' }, { path: '/api/embed' })
  const failed = await send(url, 'POST', '/api/embed', { model: EMBED, input })
  t.equal(failed.status, 500)
  t.same(failed.json, { error: 'the runner crashed' }, 'one error, as the instance said it')
  await waitFor('corral idle', async () => (await queued(url)).depth === 0)

  fake.script({ kind: 'die-after-chunks', chunks: 0 }, { path: '/api/embed' })
  const cut = await send(url, 'POST', '/api/embed', { model: EMBED, input })
  t.equal(cut.status, 502)
  t.match((cut.json as { error: string }).error, /sent in parts and one part's answer is unusable/)
  t.same(Object.keys(cut.json as object), ['error'])

  const openai = texts(8)
  fake.script({ kind: 'status', status: 400, error: 'input too long' }, { path: '/v1/embeddings' })
  const refused = await send(url, 'POST', '/v1/embeddings', { model: EMBED, input: openai })
  t.equal(refused.status, 400)
  t.match(refused.json, { error: { message: 'input too long' } }, 'on /v1, the instance\'s OpenAI-shaped error')

  const before = embedInputs(fake).flat().length
  const ok = await send(url, 'POST', '/api/embed', { model: EMBED, input })
  t.equal(ok.status, 200)
  t.equal(ok.headers['x-corral-cache'], 'miss')
  t.equal(embedInputs(fake).flat().length - before, 8, 'no item of the failed batches was cached: all 8 are fetched')
  t.equal((ok.json as { embeddings: unknown[] }).embeddings.length, 8)
})

t.test('cache on: a partly cached batch goes in parts, and the parts\' items are cached', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url], { balancer: { priority: priority() } })
  await interactive(url)
  const first = texts(8)
  const fresh = texts(8)
  const mixed = [fresh[0]!, ...first, ...fresh.slice(1)]
  t.equal((await send(url, 'POST', '/api/embed', { model: EMBED, input: first })).status, 200)
  t.same(embedInputs(fake).map((p) => p.length), [4, 4], 'nothing cached: the batch goes in two parts')
  await corral.cache?.settle()
  await interactive(url)
  const got = await send(url, 'POST', '/api/embed', { model: EMBED, input: mixed })
  t.equal(got.status, 200)
  t.equal(got.headers['x-corral-cache'], 'miss')
  t.same(embedInputs(fake).slice(2), [fresh.slice(0, 4), fresh.slice(4)], 'only the 8 missing items, in two parts')
  const whole = await send(fake.url, 'POST', '/api/embed', { model: EMBED, input: mixed })
  t.equal(embeddingsText(got.text), embeddingsText(whole.text), 'cached and fetched vectors in input order, as one instance answers')
  await corral.cache?.settle()
  const count = fake.count('/api/embed')
  const again = await send(url, 'POST', '/api/embed', { model: EMBED, input: mixed })
  t.equal(again.headers['x-corral-cache'], 'hit', 'every item was cached, the parts\' too')
  t.equal(fake.count('/api/embed'), count)
  t.same((again.json as { embeddings: unknown }).embeddings, (whole.json as { embeddings: unknown }).embeddings, 'float32 round trip: the same vectors')
})

t.test('a client that leaves cancels the parts in flight and those still queued', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], {
    instances: [{ url: fake.url, name: 'i0', max_concurrency: 2 }],
    cache: { enabled: false },
    balancer: { priority: priority() },
  })
  await interactive(url)
  fake.script({ kind: 'hang' }, { path: '/api/embed', times: 2 })
  const body = JSON.stringify({ model: EMBED, input: texts(12) })
  const req = http.request(`${url}/api/embed`, { method: 'POST', headers: { 'content-type': 'application/json' } })
  req.on('error', () => undefined)
  req.end(body)
  await fake.waitForRequests(2, '/api/embed')
  await waitFor('the third part queued in corral', async () => (await queued(url)).bulk === 1)
  req.destroy()
  await fake.waitForClosedEarly(2, { what: 'both parts at the instance cancelled' })
  await waitFor('the queued part gone', async () => (await queued(url)).depth === 0)
  t.equal((await send(url, 'POST', '/api/embed', { model: EMBED, input: ['after'] })).status, 200)
  t.same(embedInputs(fake).map((p) => p.length), [4, 4, 1], 'the third part never reached the instance')
})
