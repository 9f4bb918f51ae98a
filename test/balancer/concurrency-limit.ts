/**
 * Learned concurrency: the decision logic on synthetic answers, then against fake instances with
 * 1, 2, 4 and 8 parallel slots behind real sockets: the learned limit lands within one of the
 * truth after a bounded number of requests, and follows a change of slots or of speed.
 */
import t, { type Test } from 'tap'
import { ConcurrencyLimit, INITIAL_CONCURRENCY } from '../../src/balancer/concurrency-limit.js'
import { startFakeOllama, type FakeOllama } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { startCorral } from '../fixtures/start-corral.js'

/** Synthetic FIFO instance: `slots` slots, `serviceMs` each; the answer at in-flight `level` waits floor((level-1)/slots) rounds. */
function answer(limit: ConcurrencyLimit, level: number, slots: number, serviceMs: number, ttfbMs = 10): void {
  const rounds = Math.floor((level - 1) / slots)
  limit.update(level, ttfbMs + rounds * serviceMs, serviceMs - ttfbMs)
}

/** Runs a saturated closed loop on a synthetic instance: in flight is always the limit (plus nothing). */
function saturate(limit: ConcurrencyLimit, slots: number, answers: number, serviceMs = 100): void {
  if (limit.samples === 0) answer(limit, 1, slots, serviceMs)
  for (let i = 0; i < answers; i++) answer(limit, limit.value, slots, serviceMs)
}

// The scenarios on fake instances wait on answers most of the time, each on its own fake and
// corral: two run side by side (more, and their shared event loop's stalls read as queueing).
t.jobs = 2

t.test('starts low, doubles while nothing queues, then settles within one of the slots', async (t) => {
  for (const slots of [1, 2, 3, 4, 8, 12, 32]) {
    const limit = new ConcurrencyLimit()
    t.equal(limit.value, INITIAL_CONCURRENCY)
    saturate(limit, slots, 60)
    t.ok(Math.abs(limit.value - slots) <= 1, `${slots} slots: learned ${limit.value}`)
    // Probing above costs few answers: the limit spends most of its time at the truth.
    let atTruth = 0
    for (let i = 0; i < 200; i++) {
      answer(limit, limit.value, slots, 100)
      if (limit.value === slots) atTruth++
    }
    t.ok(atTruth >= 150, `${slots} slots: at the truth ${atTruth} of 200 answers`)
  }
})

t.test('follows fewer slots at once, and more slots by probing', async (t) => {
  const limit = new ConcurrencyLimit()
  saturate(limit, 8, 60)
  saturate(limit, 2, 10)
  t.ok(Math.abs(limit.value - 2) <= 1, `8 -> 2 slots: ${limit.value}`)
  saturate(limit, 6, 60)
  t.ok(Math.abs(limit.value - 6) <= 1, `2 -> 6 slots: ${limit.value}`)
})

t.test('an instance that gets slower keeps its slots', async (t) => {
  const limit = new ConcurrencyLimit()
  saturate(limit, 4, 60)
  // Six times slower: every answer late, including its first token.
  for (let i = 0; i < 60; i++) {
    const level = limit.value
    const rounds = Math.floor((level - 1) / 4)
    limit.update(level, 60 + rounds * 600, 540)
  }
  t.ok(Math.abs(limit.value - 4) <= 1, `learned ${limit.value}`)
})

t.test('answers below the limit, or sent alone, never raise it', async (t) => {
  const limit = new ConcurrencyLimit()
  for (let i = 0; i < 50; i++) limit.update(1, 10, 90)
  t.equal(limit.value, INITIAL_CONCURRENCY, 'one at a time says nothing about a second slot')
  limit.update(1, 500, 90)
  t.equal(limit.value, INITIAL_CONCURRENCY, 'a late answer sent alone moves the no-load latency, not the limit')
  t.ok(limit.baseMs > 10)
})

/** Sends `total` requests from `clients` closed-loop clients; every one must answer 200. */
async function drive(t: Test, url: string, clients: number, total: number): Promise<void> {
  let sent = 0
  const client = async (): Promise<void> => {
    while (sent < total) {
      sent++
      const res = await send(url, 'POST', '/api/generate', { model: 'llama3.2', prompt: `p${sent}`, stream: false })
      if (res.status !== 200) t.fail(`status ${res.status}: ${res.text}`)
    }
  }
  await Promise.all(Array.from({ length: clients }, client))
}

async function instance(t: Test, numParallel: number): Promise<{ fake: FakeOllama; url: string; learned: () => number }> {
  const fake = await startFakeOllama({ numParallel, tokenDelayMs: 16, tokens: 8 })
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url], { cache: { enabled: false } })
  return { fake, url, learned: () => corral.balancer.instances[0]!.slots('generation') }
}

for (const slots of [1, 2, 4, 8]) {
  const requests = 20 * slots + 60
  t.test(`a fake instance with ${slots} parallel slot${slots === 1 ? '' : 's'}: learned within one after at most ${3 * requests} requests`, async (t) => {
    const { url, learned } = await instance(t, slots)
    // The fake answers from this test process, which shares two cores with the other test files:
    // a stall of the process can read as queueing (or hide it) for a while. The limit must land
    // within one of the truth in a bounded number of requests: up to three rounds.
    const rounds = await driveUntilNear(t, url, 2 * slots + 2, requests, learned, slots)
    t.ok(Math.abs(learned() - slots) <= 1, `learned ${learned()} after ${rounds} round(s) of ${requests} requests`)
  })
}

/** Drives rounds of `requests` until the learned limit is within one of `slots`, three rounds at most; gives the rounds run. */
async function driveUntilNear(t: Test, url: string, clients: number, requests: number, learned: () => number, slots: number): Promise<number> {
  let rounds = 0
  do {
    await drive(t, url, clients, requests)
    rounds++
  } while (Math.abs(learned() - slots) > 1 && rounds < 3)
  return rounds
}

t.test('a fake instance that changes its slots, then its speed: the learned limit follows', async (t) => {
  const { fake, url, learned } = await instance(t, 4)
  await driveUntilNear(t, url, 10, 70, learned, 4)
  t.ok(Math.abs(learned() - 4) <= 1, `4 slots: learned ${learned()}`)
  fake.setNumParallel(2)
  await driveUntilNear(t, url, 10, 50, learned, 2)
  t.ok(Math.abs(learned() - 2) <= 1, `4 -> 2 slots: learned ${learned()}`)
  fake.setNumParallel(6)
  await driveUntilNear(t, url, 14, 120, learned, 6)
  t.ok(Math.abs(learned() - 6) <= 1, `2 -> 6 slots: learned ${learned()}`)
  fake.setTokenDelayMs(24)
  await driveUntilNear(t, url, 14, 60, learned, 6)
  t.ok(Math.abs(learned() - 6) <= 1, `three times slower, same slots: learned ${learned()}`)
})

t.test('max_concurrency overrides what is learned', async (t) => {
  const fake = await startFakeOllama({ numParallel: 8, tokenDelayMs: 4 })
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [], { instances: [{ url: fake.url, name: 'i0', max_concurrency: 3 }], cache: { enabled: false } })
  await drive(t, url, 8, 30)
  const [i0] = corral.balancer.instances
  t.equal(i0!.slots('generation'), 3)
  t.ok(i0!.concurrency.generation.samples > 0, 'still measured')
  const stats = (await send(url, 'GET', '/api/load-balancer-stats')).json as { instances: Record<string, unknown>[] }
  t.match(stats.instances[0], { max_concurrency: 3, learned_concurrency: { generation: 3, embedding: 3 } })
})
