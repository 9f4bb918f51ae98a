/**
 * The miss path: an answer goes to the client as the instance sent it, and capturing it for the
 * cache happens beside it (write-behind), never delayed by the store, with what was not stored
 * counted.
 */
import t from 'tap'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { startRedisServer } from '../fixtures/redis-server.js'
import { startCorral } from '../fixtures/start-corral.js'

const model = 'nomic-embed-text'
type EmbedAnswer = { model: string; embeddings: number[][]; prompt_eval_count: number }

/** Every number of `got` is the float32 of the same number of `want`. */
function float32Equal(got: number[][], want: number[][]): boolean {
  if (got.length !== want.length) return false
  return got.every((v, i) => v.length === want[i]!.length && v.every((x, j) => Math.fround(x) === Math.fround(want[i]![j]!)))
}

t.test('a miss is the instance answer byte for byte; the later hit is the same vectors in Ollama shape', async (t) => {
  const fake = await startFakeOllama()
  const twin = await startFakeOllama()
  t.teardown(() => Promise.all([fake.close(), twin.close()]))
  const { url, corral } = await startCorral(t, [fake.url])
  const cases: [string, Record<string, unknown>][] = [
    ['/api/embed', { model, input: ['one chunk', 'another chunk', 'a third'] }],
    ['/api/embed', { model, input: 'a query' }],
    ['/api/embeddings', { model, prompt: 'a legacy query' }],
    ['/v1/embeddings', { model, input: ['an openai chunk', 'and one more'] }],
  ]
  for (const [path, body] of cases) {
    const miss = await send(url, 'POST', path, body)
    t.equal(miss.headers['x-corral-cache'], 'miss', `${path}: a miss`)
    t.equal(miss.text, fake.requests.at(-1)!.answer!.toString(), `${path}: the instance bytes, unchanged`)
  }
  await corral.cache!.settle()
  for (const [path, body] of cases) {
    const hit = await send(url, 'POST', path, body)
    const direct = (await send(twin.url, 'POST', path, body)).json as Record<string, unknown>
    t.equal(hit.headers['x-corral-cache'], 'hit', `${path}: then a hit`)
    const answer = hit.json as Record<string, unknown>
    if (path === '/api/embed') {
      t.ok(float32Equal((answer as EmbedAnswer).embeddings, (direct as EmbedAnswer).embeddings), `${path}: float32-equal vectors`)
      t.same((answer as EmbedAnswer).embeddings, (direct as EmbedAnswer).embeddings, `${path}: the very numbers`)
      t.equal(answer.model, model)
      t.equal(answer.prompt_eval_count, direct.prompt_eval_count)
    } else if (path === '/api/embeddings') {
      t.same(answer, direct, `${path}: the float64 numbers exactly`)
    } else {
      t.same(
        (answer.data as { embedding: number[] }[]).map((d) => d.embedding),
        (direct.data as { embedding: number[] }[]).map((d) => d.embedding),
        `${path}: the same vectors`,
      )
    }
  }
  t.equal(fake.count('/api/embed') + fake.count('/api/embeddings') + fake.count('/v1/embeddings'), 4, 'hits never reached the instance')
})

t.test('a partly cached batch: the new vectors are the instance texts, not re-rendered', async (t) => {
  const fake = await startFakeOllama()
  const twin = await startFakeOllama()
  t.teardown(() => Promise.all([fake.close(), twin.close()]))
  const { url, corral } = await startCorral(t, [fake.url])
  await send(url, 'POST', '/api/embed', { model, input: ['cached', 'also cached'] })
  await corral.cache!.settle()
  const mixed = await send(url, 'POST', '/api/embed', { model, input: ['cached', 'fresh one', 'fresh two'] })
  t.same((fake.requests.at(-1)!.body as { input: unknown }).input, ['fresh one', 'fresh two'])
  const fresh = await send(twin.url, 'POST', '/api/embed', { model, input: ['fresh one', 'fresh two'] })
  const texts = /"embeddings":\[(\[[^\]]*\]),(\[[^\]]*\])\]/.exec(fresh.text)!
  t.ok(mixed.text.includes(`,${texts[1]},${texts[2]}]`), 'the instance text of each fetched vector, byte for byte, after the cached one')
})

t.test('a frozen Redis never delays a miss; writes it cannot take are counted as skipped', async (t) => {
  const redis = await startRedisServer(t)
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url], {
    redis: { url: redis.url, key_prefix: 'frozen:', command_timeout: '200ms', retry_interval: '1h' },
  })
  await corral.cache!.whenStoreUp()
  await send(url, 'POST', '/api/embed', { model, input: ['warm'] })
  await corral.cache!.settle()
  t.equal(corral.cache!.report().layers.embedding.writes, 1, 'Redis takes writes while it answers')

  redis.freeze()
  // Redis stays frozen until every answer is in: none of them can have waited for a write.
  const answers = await Promise.all(
    Array.from({ length: 4 }, (_, i) => send(url, 'POST', '/api/embed', { model, input: [`frozen ${i} a`, `frozen ${i} b`] })),
  )
  t.same(answers.map((a) => a.status), [200, 200, 200, 200], 'every miss answered while Redis is frozen')
  t.same(answers.map((a) => a.headers['x-corral-cache']), ['miss', 'miss', 'miss', 'miss'])
  await corral.cache!.settle()
  redis.thaw()
  const report = corral.cache!.report()
  t.equal(report.layers.chunk.writes, 0, 'nothing was stored')
  t.equal(report.layers.chunk.skipped.store, 8, 'each vector Redis could not take is counted')
  t.equal(report.skipped_writes, 8)
  const metrics = await send(url, 'GET', '/metrics')
  t.match(metrics.text, /corral_cache_writes_skipped_total\{layer="chunk",reason="store"\} 8/, 'and shown in the metrics')
})

t.test('the memory bound holds through a long ingestion: entries evicted, bytes within it', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const maxBytes = 512 * 1024
  const { url, corral } = await startCorral(t, [fake.url], { cache: { memory: { max_size: '512KiB' } } })
  for (let batch = 0; batch < 40; batch++) {
    const res = await send(url, 'POST', '/api/embed', { model, input: Array.from({ length: 16 }, (_, i) => `doc ${batch} chunk ${i}`) })
    t.equal(res.status, 200)
  }
  await corral.cache!.settle()
  const chunk = corral.cache!.report().layers.chunk
  t.equal(chunk.writes, 640, 'every vector was stored')
  t.ok(chunk.evictions > 0, `${chunk.evictions} evicted to make room`)
  t.ok(chunk.bytes <= maxBytes, `${chunk.bytes} bytes held, bound ${maxBytes}`)
  t.equal(chunk.entries + chunk.evictions, 640, 'what is held and what was evicted add up')
  const latest = await send(url, 'POST', '/api/embed', { model, input: Array.from({ length: 16 }, (_, i) => `doc 39 chunk ${i}`) })
  t.equal(latest.headers['x-corral-cache'], 'hit', 'the most recent batch is still there')
})
