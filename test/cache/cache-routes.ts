/** corral's own cache endpoints: stats, flush by layer or model, chunk metadata. */
import t from 'tap'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { startCorral } from '../fixtures/start-corral.js'

const embed = { model: 'nomic-embed-text', input: 'query' }
const batch = { model: 'nomic-embed-text', input: ['c1', 'c2'] }
const gen = { model: 'llama3.2', prompt: 'p', options: { seed: 1 }, stream: false }

t.test('GET /api/advanced-cache-stats: per layer, overall, store', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url])
  await send(url, 'POST', '/api/embed', embed)
  await corral.cache!.settle()
  await send(url, 'POST', '/api/embed', embed)
  await send(url, 'POST', '/api/generate', gen)
  await send(url, 'POST', '/api/generate', { ...gen, options: {} })
  const stats = await send(url, 'GET', '/api/advanced-cache-stats')
  t.equal(stats.status, 200)
  t.match(stats.json, {
    enabled: true,
    store: 'memory',
    hits: 1,
    misses: 2,
    hit_rate: 0.3333,
    coalesced: 0,
    bypassed: 1,
    redis: null,
    layers: {
      embedding: { hits: 1, misses: 1, hit_rate: 0.5, writes: 1, evictions: 0, entries: 1, bytes: Number, ttl_seconds: 7 * 86400 },
      chunk: { hits: 0, misses: 0, hit_rate: 0, writes: 0, entries: 0, bytes: 0, ttl_seconds: 30 * 86400 },
      inference: { hits: 0, misses: 1, writes: 1, entries: 1, ttl_seconds: 86400 },
    },
  })
  t.ok((stats.json as { layers: { embedding: { bytes: number } } }).layers.embedding.bytes > 3000)
  t.equal((await send(url, 'POST', '/api/advanced-cache-stats')).status, 405)
})

t.test('DELETE /api/cache: everything, one layer, one model', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url])
  const fill = async (): Promise<void> => {
    await send(url, 'POST', '/api/embed', embed)
    await send(url, 'POST', '/api/embed', batch)
    await send(url, 'POST', '/api/generate', gen)
    await corral.cache!.settle()
  }
  const statuses = async (): Promise<unknown[]> => [
    (await send(url, 'POST', '/api/embed', embed)).headers['x-corral-cache'],
    (await send(url, 'POST', '/api/embed', batch)).headers['x-corral-cache'],
    (await send(url, 'POST', '/api/generate', gen)).headers['x-corral-cache'],
  ]
  await fill()
  t.same(await statuses(), ['hit', 'hit', 'hit'])
  const chunk = await send(url, 'DELETE', '/api/cache?layer=chunk')
  t.same(chunk.json, { deleted: 2, layer: 'chunk', model: null })
  t.same(await statuses(), ['hit', 'miss', 'hit'], 'only the chunk layer went')
  await corral.cache!.settle()
  t.same((await send(url, 'DELETE', '/api/cache?model=nomic-embed-text')).json, { deleted: 3, layer: null, model: 'nomic-embed-text' })
  t.same(await statuses(), ['miss', 'miss', 'hit'], 'only that model went')
  await corral.cache!.settle()
  t.match((await send(url, 'DELETE', '/api/cache')).json, { deleted: 4 })
  t.same(await statuses(), ['miss', 'miss', 'miss'])
  t.match((await send(url, 'DELETE', '/api/cache?layer=everything')), { status: 400, json: { error: /layer must be one of embedding, chunk, inference/ } })
  t.equal((await send(url, 'GET', '/api/cache')).status, 405)
})

t.test('chunk metadata: PUT, GET, DELETE /api/cache/chunks/{id}', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url])
  const doc = { source: 'handbook.pdf', page: 12, text_hash: 'abc' }
  t.equal((await send(url, 'PUT', '/api/cache/chunks/doc-1%2F12', doc)).status, 204)
  const got = await send(url, 'GET', '/api/cache/chunks/doc-1%2F12')
  t.equal(got.status, 200)
  t.same(got.json, doc)
  t.match(got.headers['content-type'], /application\/json/)
  t.equal((await send(url, 'PUT', '/api/cache/chunks/x', 'not json')).status, 400)
  t.equal((await send(url, 'PUT', '/api/cache/chunks/x', { big: 'a'.repeat(70 * 1024) })).status, 413, 'at most 64 KiB')
  t.equal((await send(url, 'GET', '/api/cache/chunks/has%20space')).status, 400)
  t.equal((await send(url, 'DELETE', '/api/cache/chunks/doc-1%2F12')).status, 204)
  t.match(await send(url, 'GET', '/api/cache/chunks/doc-1%2F12'), { status: 404, json: { error: /not found/ } })
  t.equal((await send(url, 'DELETE', '/api/cache/chunks/doc-1%2F12')).status, 404)
  t.equal((await send(url, 'POST', '/api/cache/chunks/x', doc)).status, 405)
  t.equal(fake.count(), 0, 'none of it reached an instance')
})
