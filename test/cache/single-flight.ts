/**
 * Single flight: identical cacheable requests in flight at once reach the instance once (counted
 * at the fake); streamed followers get the leader's chunks as they come; a failing leader sends
 * its followers upstream; a follower leaving disturbs nobody.
 */
import { performance } from 'node:perf_hooks'
import { setImmediate as tick } from 'node:timers/promises'
import t from 'tap'
import { request } from 'undici'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { ndjson, send } from '../fixtures/http.js'
import { startCorral } from '../fixtures/start-corral.js'

const seeded = { model: 'llama3.2', prompt: 'tell me a story', options: { seed: 3 } }

/** Waits until `condition()` holds, checking once per event-loop turn (corral has no events for it). */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await tick()
}

t.test('N concurrent identical requests: one upstream request', async (t) => {
  const fake = await startFakeOllama({ tokenDelayMs: 20 })
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url])
  const answers = await Promise.all(Array.from({ length: 8 }, () => send(url, 'POST', '/api/generate', { ...seeded, stream: false })))
  t.equal(fake.count('/api/generate'), 1, 'one upstream request for eight')
  t.same(answers.map((a) => a.status), Array(8).fill(200))
  t.same(answers.map((a) => a.headers['x-corral-cache']).sort(), ['coalesced', 'coalesced', 'coalesced', 'coalesced', 'coalesced', 'coalesced', 'coalesced', 'miss'])
  const texts = new Set(answers.map((a) => (a.json as { response: string }).response))
  t.equal(texts.size, 1, 'the same answer for all')
  t.equal(corral.cache!.report().coalesced, 7)

  const batch = { model: 'nomic-embed-text', input: ['p', 'q', 'r'] }
  const vectors = await Promise.all(Array.from({ length: 6 }, () => send(url, 'POST', '/api/embed', batch)))
  t.equal(fake.count('/api/embed'), 1, 'embedding batches coalesce too')
  t.ok(vectors.every((v) => JSON.stringify((v.json as { embeddings: unknown }).embeddings) === JSON.stringify((vectors[0]!.json as { embeddings: unknown }).embeddings)))
})

t.test('streamed followers receive the leader chunks before the leader finishes', async (t) => {
  const fake = await startFakeOllama({ tokenDelayMs: 100, tokens: 8 })
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url])
  const read = async (delayed: boolean): Promise<{ first: number; last: number; text: string; header: unknown }> => {
    if (delayed) await fake.waitForRequests(1, '/api/generate')
    const res = await request(`${url}/api/generate`, { method: 'POST', body: JSON.stringify(seeded) })
    let first = 0
    let text = ''
    for await (const chunk of res.body) {
      first ||= performance.now()
      text += (chunk as Buffer).toString('utf8')
    }
    return { first, last: performance.now(), text, header: res.headers['x-corral-cache'] }
  }
  const [leader, follower] = await Promise.all([read(false), read(true)])
  t.equal(leader.header, 'miss')
  t.equal(follower.header, 'coalesced')
  t.equal(fake.count('/api/generate'), 1)
  t.ok(follower.first < leader.last - 300, `follower's first chunk ${(leader.last - follower.first).toFixed(0)} ms before the leader's end`)
  t.equal(follower.text, leader.text, 'the same stream, byte for byte')
  t.equal(ndjson(follower.text).length, 9)
})

t.test('a failing leader sends its followers upstream; a streamed follower mid-stream gets an error line', async (t) => {
  const fake = await startFakeOllama({ tokenDelayMs: 60, tokens: 8 })
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url])
  fake.script({ kind: 'die-after-chunks', chunks: 4 }, { path: '/api/generate' })
  const leader = send(url, 'POST', '/api/generate', seeded)
  await fake.waitForRequests(1, '/api/generate')
  const followers = Promise.all([1, 2, 3].map(() => send(url, 'POST', '/api/generate', { ...seeded, stream: false })))
  const streamed = send(url, 'POST', '/api/generate', seeded)
  const [lead, whole, along] = await Promise.all([leader, followers, streamed])
  t.match(lead.text, /"error"/, 'the leader saw its stream break')
  t.same(whole.map((w) => w.status), [200, 200, 200], 'non-streamed followers went upstream and got answers')
  t.ok(whole.every((w) => (w.json as { done: boolean }).done === true))
  t.match(ndjson(along.text).at(-1), { error: /failed mid-response/ }, 'the streamed follower had part of the stream: an error line')
  t.equal(fake.count('/api/generate'), 2, 'the followers went upstream together: one of them led, the others followed')
  await corral.cache!.settle()
  t.equal((await send(url, 'POST', '/api/generate', seeded)).headers['x-corral-cache'], 'hit', 'a follower stored the answer')
})

t.test('a follower leaving does not cancel the leader or the other followers', async (t) => {
  const fake = await startFakeOllama({ tokenDelayMs: 50, tokens: 8 })
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url])
  const leader = send(url, 'POST', '/api/generate', { ...seeded, stream: false })
  await fake.waitForRequests(1, '/api/generate')
  const quitter = new AbortController()
  const leaving = request(`${url}/api/generate`, { method: 'POST', body: JSON.stringify(seeded), signal: quitter.signal })
    .then((res) => res.body.text())
    .catch((err: Error) => err.name)
  const staying = send(url, 'POST', '/api/generate', seeded)
  await until(() => corral.cache!.report().coalesced === 2)
  quitter.abort()
  t.equal(await leaving, 'AbortError')
  const [lead, stay] = await Promise.all([leader, staying])
  t.equal(lead.status, 200)
  t.equal((lead.json as { done: boolean }).done, true)
  t.match(ndjson(stay.text).at(-1), { done: true, done_reason: 'stop' }, 'the other follower got the whole answer')
  t.equal(fake.count('/api/generate'), 1)
  t.equal(fake.closedEarly, 0, 'the upstream request was not cancelled')
})

t.test('an answer too large to store still reaches its streamed followers whole', async (t) => {
  const fake = await startFakeOllama({ tokenDelayMs: 40, tokens: 40 })
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url], { cache: { max_entry_size: '1KiB' } })
  const leader = send(url, 'POST', '/api/generate', seeded)
  await fake.waitForRequests(1, '/api/generate')
  const follower = await send(url, 'POST', '/api/generate', seeded)
  const lead = await leader
  t.equal(follower.headers['x-corral-cache'], 'coalesced')
  t.equal(follower.text, lead.text, 'the same bytes, no error line')
  t.match(ndjson(follower.text).at(-1), { done: true })
  await corral.cache!.settle()
  t.equal(corral.cache!.report().layers.inference.writes, 0, 'not stored: over max_entry_size')
})
