/**
 * Fault scenarios: an instance misbehaves on and off. (1) 503 storms: one instance answers every
 * model request with Ollama's "server busy", another does for its first ten; every request is
 * retried elsewhere and succeeds, and the failure penalty moves load away. (2) Flapping: the fault
 * proxy in front of one instance switches between resetting every connection and passing, every
 * 8 answers, under load; nothing is lost that could be retried.
 */
import t from 'tap'
import { runLoad } from '../fixtures/fault-load.js'
import { assertNoOpenSockets, assertSettled, startScene } from '../fixtures/fault-scene.js'

const MODEL_PATHS = ['/api/generate', '/api/chat', '/api/embed']

t.test('503 storms: retried elsewhere, load moves away, nothing lost', async (t) => {
  const scene = await startScene(t)
  const [storm, burst, calm] = scene.fakes
  for (const path of MODEL_PATHS) {
    storm!.script({ kind: 'status', status: 503 }, { path, times: 1000 })
    burst!.script({ kind: 'status', status: 503 }, { path, times: 4 })
  }
  const tally = await runLoad('503 storms', scene.url, { count: 80, concurrency: 10 })
  t.equal(tally.ok, 80, 'every request succeeded')
  const received = scene.fakes.map((f) => MODEL_PATHS.reduce((n, p) => n + f.count(p), 0))
  t.comment(`model requests received (storming, busy for 4 per route, calm): ${received.join(', ')}`)
  t.ok(received[0]! < received[2]!, 'the storming instance received less than the calm one')
  t.ok(calm!.count() > 0)
  await assertSettled(t, scene, tally)
})

t.test('flapping: an instance resets every connection, then passes, every 8 answers; nothing retryable is lost', async (t) => {
  // Without ejection and with a small failure penalty, corral keeps coming back to the flapping
  // instance, so its requests meet every phase: the worst case for retries.
  const scene = await startScene(t, {
    fake: { tokens: 20, tokenDelayMs: 3 },
    config: { health: { eject_after: 0 }, balancer: { failure_penalty: '10ms', failure_decay: '100ms' } },
  })
  const flapper = scene.proxies[1]!
  // The flaps follow the load (every 8 answers), not the clock, so a fast machine meets them too.
  let flips = 0
  let flipping = Promise.resolve()
  const flip = (): void => {
    flipping = flipping.then(() => flapper.set({ mode: flips++ % 2 === 0 ? 'reset' : 'pass' }))
  }
  flip()
  const tally = await runLoad('flapping', scene.url, { count: 80, concurrency: 10, onAnswer: (done) => (done % 8 === 0 ? flip() : undefined) })
  await flipping
  await flapper.heal()
  t.comment(`flips: ${flips}, connections reset: ${flapper.stats().resets}`)
  t.equal(tally.sent, 80)
  t.equal(tally.unexplained, 0, 'every failure is an answer cut after it started')
  t.ok(flapper.stats().resets > 0, 'connections were reset')
  await assertSettled(t, scene, tally)
})

assertNoOpenSockets(t)
