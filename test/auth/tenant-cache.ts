/**
 * With auth on, keys are tenants for the cache: a cached answer (generation, chat, batch
 * embedding) of one key is a miss for another, identical requests of two keys in flight at once
 * both reach an instance, keys of one `cache_group` share, and `cache.share_across_keys` shares
 * everything on purpose.
 */
import t from 'tap'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { startCorral } from '../fixtures/start-corral.js'

const ALICE = 'alice-key-4f1c9e7a2b6d8053'
const BOB = 'bob-key-0a9d3e5c7f1b2468'
const CAROL = 'carol-key-9e8d7c6b5a4f3021'
const DAVE = 'dave-key-1a2b3c4d5e6f7089'
const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` })
const generate = { model: 'llama3.2', prompt: 'what did the other tenant ask?', options: { seed: 42 }, stream: false }
const embed = { model: 'nomic-embed-text', input: ['chunk one', 'chunk two'] }

const keys = [
  { name: 'alice', key: ALICE },
  { name: 'bob', key: BOB },
  { name: 'carol', key: CAROL, cache_group: 'team' },
  { name: 'dave', key: DAVE, cache_group: 'team' },
]

t.test('a cached answer of one key is a miss for another', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], { auth: { enabled: true, keys } })

  const first = await send(url, 'POST', '/api/generate', generate, bearer(ALICE))
  t.equal(first.headers['x-corral-cache'], 'miss')
  t.equal((await send(url, 'POST', '/api/generate', generate, bearer(ALICE))).headers['x-corral-cache'], 'hit', 'the same key hits')
  const other = await send(url, 'POST', '/api/generate', generate, bearer(BOB))
  t.equal(other.headers['x-corral-cache'], 'miss', "another key misses: it cannot learn alice's prompt")
  t.equal(fake.count('/api/generate'), 2)

  t.equal((await send(url, 'POST', '/api/embed', embed, bearer(ALICE))).headers['x-corral-cache'], 'miss')
  t.equal((await send(url, 'POST', '/api/embed', embed, bearer(ALICE))).headers['x-corral-cache'], 'hit')
  t.equal((await send(url, 'POST', '/api/embed', embed, bearer(BOB))).headers['x-corral-cache'], 'miss', 'batch embeddings too')
  t.equal((await send(url, 'POST', '/api/embed', embed, bearer(BOB))).headers['x-corral-cache'], 'hit', 'and then hits its own entries')
  t.equal(fake.count('/api/embed'), 2)

  t.equal((await send(url, 'POST', '/api/generate', generate, bearer(CAROL))).headers['x-corral-cache'], 'miss')
  t.equal((await send(url, 'POST', '/api/generate', generate, bearer(DAVE))).headers['x-corral-cache'], 'hit', 'keys of one cache_group share')
})

t.test('identical requests of two keys in flight at once are not coalesced', async (t) => {
  const fake = await startFakeOllama({ tokenDelayMs: 5 })
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], { auth: { enabled: true, keys } })
  const streamed = { ...generate, prompt: 'at the same time', stream: true }
  const [a, b] = await Promise.all([send(url, 'POST', '/api/generate', streamed, bearer(ALICE)), send(url, 'POST', '/api/generate', streamed, bearer(BOB))])
  t.same([a.headers['x-corral-cache'], b.headers['x-corral-cache']], ['miss', 'miss'])
  t.equal(fake.count('/api/generate'), 2, 'each key reached the instance')
})

t.test('cache.share_across_keys shares on purpose', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], { auth: { enabled: true, keys }, cache: { share_across_keys: true } })
  t.equal((await send(url, 'POST', '/api/generate', generate, bearer(ALICE))).headers['x-corral-cache'], 'miss')
  t.equal((await send(url, 'POST', '/api/generate', generate, bearer(BOB))).headers['x-corral-cache'], 'hit')
  t.equal(fake.count('/api/generate'), 1)
})
