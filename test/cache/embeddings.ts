/**
 * Embeddings are cached per input: a batch whose inputs are partly cached sends only the missing
 * ones upstream, in one request, and every answer parses to the instance's numbers.
 */
import t from 'tap'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { startCorral } from '../fixtures/start-corral.js'

const model = 'nomic-embed-text'
type EmbedAnswer = { model: string; embeddings: number[][]; prompt_eval_count: number }

t.test('/api/embed: partial hits send only the missing inputs, answers come in order', async (t) => {
  const fake = await startFakeOllama()
  const twin = await startFakeOllama()
  t.teardown(() => Promise.all([fake.close(), twin.close()]))
  const { url, corral } = await startCorral(t, [fake.url])

  const first = await send(url, 'POST', '/api/embed', { model, input: ['alpha', 'beta'] })
  t.equal(first.headers['x-corral-cache'], 'miss')
  await corral.cache!.settle()

  const batch = ['gamma', 'alpha', 'delta', 'beta', 'gamma']
  const mixed = await send(url, 'POST', '/api/embed', { model, input: batch })
  t.equal(mixed.status, 200)
  t.equal(mixed.headers['x-corral-cache'], 'miss')
  t.equal(fake.count('/api/embed'), 2)
  t.same((fake.requests.at(-1)!.body as { input: unknown }).input, ['gamma', 'delta'], 'only the missing inputs, each once, one request')
  const direct = (await send(twin.url, 'POST', '/api/embed', { model, input: batch })).json as EmbedAnswer
  const answer = mixed.json as EmbedAnswer
  t.same(answer.embeddings, direct.embeddings, 'same numbers, same order as the instance')
  t.equal(answer.model, model)
  t.equal(answer.prompt_eval_count, direct.prompt_eval_count, 'token counts add up')
  await corral.cache!.settle()

  const all = await send(url, 'POST', '/api/embed', { model, input: batch })
  t.equal(all.headers['x-corral-cache'], 'hit')
  t.same((all.json as EmbedAnswer).embeddings, direct.embeddings)
  t.equal(fake.count('/api/embed'), 2, 'nothing reached the instance')

  const single = await send(url, 'POST', '/api/embed', { model, input: 'alpha' })
  t.equal(single.headers['x-corral-cache'], 'miss', 'a single input is the embedding layer, a batch the chunk layer')
  await corral.cache!.settle()
  const singleHit = await send(url, 'POST', '/api/embed', { model, input: ['alpha'] })
  t.equal(singleHit.headers['x-corral-cache'], 'hit', 'a one-item list is a single input')
  const directSingle = (await send(twin.url, 'POST', '/api/embed', { model, input: 'alpha' })).json as EmbedAnswer
  t.same((singleHit.json as EmbedAnswer).embeddings, directSingle.embeddings, 'the vector of the instance')
  const stats = corral.cache!.report()
  t.match(stats.layers.embedding, { hits: 1, misses: 1, writes: 1, entries: 1 })
  t.match(stats.layers.chunk, { hits: 1, misses: 2, writes: 4, entries: 4 })
})

t.test('an instance error on a partial batch is relayed as it came; a failed upstream is not stored', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url], { proxy: { max_attempts: 1 } })
  await send(url, 'POST', '/api/embed', { model, input: ['one', 'two'] })
  await corral.cache!.settle()
  fake.script({ kind: 'status', status: 500, error: 'runner crashed' }, { path: '/api/embed' })
  const failed = await send(url, 'POST', '/api/embed', { model, input: ['one', 'three'] })
  t.equal(failed.status, 500)
  t.same(failed.json, { error: 'runner crashed' })
  fake.script({ kind: 'die-after-chunks', chunks: 0 }, { path: '/api/embed' })
  const cut = await send(url, 'POST', '/api/embed', { model, input: ['one', 'three'] })
  t.equal(cut.status, 502, 'a cut answer corral had to assemble becomes a 502')
  t.match(cut.json, { error: String })
  await corral.cache!.settle()
  const ok = await send(url, 'POST', '/api/embed', { model, input: ['one', 'three'] })
  t.equal(ok.status, 200)
  t.same((fake.requests.at(-1)!.body as { input: unknown }).input, ['three'], 'three was never stored')
})

t.test('/api/embeddings (float64) and /api/embed (float32) are separate namespaces', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url])
  const legacy = await send(url, 'POST', '/api/embeddings', { model, prompt: 'same text' })
  await send(url, 'POST', '/api/embed', { model, input: 'same text' })
  await corral.cache!.settle()
  const legacyHit = await send(url, 'POST', '/api/embeddings', { model, prompt: 'same text' })
  t.equal(legacyHit.headers['x-corral-cache'], 'hit')
  t.same(legacyHit.json, legacy.json, 'float64 numbers, exactly')
  t.equal(legacyHit.text, legacy.text, 'even byte for byte')
  t.equal(fake.count('/api/embeddings'), 1)
  t.equal(fake.count('/api/embed'), 1)
  const embedHit = await send(url, 'POST', '/api/embed', { model, input: 'same text' })
  t.notSame((embedHit.json as EmbedAnswer).embeddings[0], (legacy.json as { embedding: number[] }).embedding, 'normalised, not the legacy vector')
})

t.test('/v1/embeddings: float and base64 answers from the same cached vectors', async (t) => {
  const fake = await startFakeOllama()
  const twin = await startFakeOllama()
  t.teardown(() => Promise.all([fake.close(), twin.close()]))
  const { url, corral } = await startCorral(t, [fake.url])
  await send(url, 'POST', '/v1/embeddings', { model, input: ['x', 'y'] })
  await corral.cache!.settle()
  for (const encoding_format of ['float', 'base64']) {
    const body = { model, input: ['y', 'z', 'x'], encoding_format }
    const got = await send(url, 'POST', '/v1/embeddings', body)
    const direct = await send(twin.url, 'POST', '/v1/embeddings', body)
    t.equal(got.status, 200)
    t.same((got.json as { data: unknown[] }).data, (direct.json as { data: unknown[] }).data, `${encoding_format}: same data as the instance`)
    t.match(got.json, { object: 'list', model, usage: { prompt_tokens: Number } })
    await corral.cache!.settle()
  }
  t.equal(fake.count('/v1/embeddings'), 2, 'z fetched once, then every vector came from the cache')
  t.same((fake.requests.at(-1)!.body as { input: unknown }).input, ['z'])
})

t.test('keys: every option counts, field order and stream do not, a digest change invalidates', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  let digest = 'sha256:aaa'
  const { url, corral } = await startCorral(t, [fake.url], {}, { digestOf: () => digest })
  const status = async (body: object): Promise<unknown> => {
    await corral.cache!.settle()
    return (await send(url, 'POST', '/api/embed', body)).headers['x-corral-cache']
  }
  t.equal(await status({ model, input: 'k', options: { num_ctx: 2048, temperature: 0 } }), 'miss')
  t.equal(await status({ options: { temperature: 0, num_ctx: 2048 }, input: 'k', model: `${model}:latest` }), 'hit', 'field order and the :latest tag')
  t.equal(await status({ model, input: 'k', options: { num_ctx: 4096, temperature: 0 } }), 'miss', 'num_ctx is in the key')
  t.equal(await status({ model, input: 'k', options: { num_ctx: 2048, temperature: 0 }, truncate: false }), 'miss', 'truncate is in the key')
  t.equal(await status({ model, input: 'k', options: { num_ctx: 2048, temperature: 0 }, dimensions: 64 }), 'miss', 'dimensions')
  t.equal(await status({ model, input: 'k', options: { num_ctx: 2048, temperature: 0 }, keep_alive: 0 }), 'hit', 'keep_alive is not')
  digest = 'sha256:bbb'
  t.equal(await status({ model, input: 'k', options: { num_ctx: 2048, temperature: 0 } }), 'miss', 'a re-pulled model (new digest) never serves stale vectors')
  t.equal(await status({ model, input: '' }), 'bypass', 'an empty input only loads the model')
})
