/**
 * A single-flight leader whose client leaves does not break its followers: the upstream request
 * goes on while a follower listens (a streamed follower gets the whole answer, a waiting one its
 * replay, from the one upstream request), and is cancelled when nobody else listens.
 */
import t from 'tap'
import { request } from 'undici'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { ndjson, send } from '../fixtures/http.js'
import { startCorral } from '../fixtures/start-corral.js'
import { waitFor } from '../fixtures/wait-for.js'

const seeded = { model: 'llama3.2', prompt: 'a long story', options: { seed: 11 } }

/** Starts a streamed request and resolves once its first chunk arrived, with a way to abort it. */
async function streamStarted(url: string): Promise<{ abort(): void; header: unknown; closed: Promise<void> }> {
  const controller = new AbortController()
  const res = await request(`${url}/api/generate`, { method: 'POST', body: JSON.stringify(seeded), signal: controller.signal })
  const closed = new Promise<void>((resolve) => {
    res.body.on('error', () => resolve())
    res.body.on('close', () => resolve())
  })
  await new Promise((resolve) => res.body.once('data', resolve))
  return { abort: () => controller.abort(), header: res.headers['x-corral-cache'], closed }
}

t.test('the leader leaves mid-stream: streamed and waiting followers get the whole answer', async (t) => {
  const fake = await startFakeOllama({ tokenDelayMs: 30, tokens: 12 })
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url])

  const leader = await streamStarted(url)
  t.equal(leader.header, 'miss')
  // Followers join while the leader streams: one streamed, one waiting for the whole answer.
  const streamed = request(`${url}/api/generate`, { method: 'POST', body: JSON.stringify(seeded) })
  const waiting = send(url, 'POST', '/api/generate', { ...seeded, stream: false })
  const follower = await streamed
  t.equal(follower.headers['x-corral-cache'], 'coalesced')
  const text = follower.body.text()
  await waitFor('both followers coalesced', () => corral.cache!.report().coalesced === 2)
  leader.abort()
  await leader.closed

  const lines = ndjson(await text)
  t.notOk(lines.some((l) => 'error' in l), 'no error line for the follower')
  t.match(lines.at(-1), { done: true }, 'the follower got the whole answer')
  t.equal(lines.length, 13)
  const whole = await waiting
  t.equal(whole.status, 200)
  t.equal(whole.headers['x-corral-cache'], 'coalesced')
  t.match(whole.json, { done: true })
  t.equal(fake.count('/api/generate'), 1, 'one upstream request for all three')
  t.equal(fake.closedEarly, 0, 'the upstream request was not cancelled')

  await corral.cache!.settle()
  t.equal((await send(url, 'POST', '/api/generate', { ...seeded, stream: false })).headers['x-corral-cache'], 'hit', 'and the answer was stored')
})

t.test('a leader without followers still cancels its upstream request', async (t) => {
  const fake = await startFakeOllama({ tokenDelayMs: 30, tokens: 50 })
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url])
  const leader = await streamStarted(url)
  leader.abort()
  await fake.waitForClosedEarly(1)
  t.equal(fake.closedEarly, 1)
})
