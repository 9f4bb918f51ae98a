/**
 * Fault scenarios: an instance dies while answering. Through the fault proxy in front of one of
 * three instances: (1) it dies (connections reset, new ones refused) while streams are under way;
 * (2) it closes every connection after a few hundred bytes. Whatever failed before the answer
 * started is retried elsewhere and succeeds; what was cut mid-answer ends with an error line (a
 * stream) or a closed connection (a non-streamed answer); nothing else fails, and no counter,
 * request or connection is left behind.
 */
import t from 'tap'
import { runLoad } from '../fixtures/fault-load.js'
import { assertNoOpenSockets, assertSettled, startScene, until, within } from '../fixtures/fault-scene.js'

const FAKE = { tokens: 30, tokenDelayMs: 5 }

t.test('an instance dies mid-stream: cut streams end with an error line, everything else succeeds', async (t) => {
  const scene = await startScene(t, { fake: FAKE })
  const [victim] = scene.fakes
  const load = runLoad('dies mid-stream', scene.url, { count: 60, concurrency: 9 })
  // Kill it once at least two answers are under way there and bytes are flowing to corral.
  await within(victim!.waitUntil((f) => f.inFlight >= 2), 'two requests at the victim')
  const before = scene.proxies[0]!.stats().bytesDown
  await until(() => scene.proxies[0]!.stats().bytesDown >= before + 400, 'answer bytes flowing')
  // Every answer that can be cut is on a connection open now (idle keep-alive ones included).
  const openAtDeath = scene.proxies[0]!.open
  await scene.proxies[0]!.set({ mode: 'refuse' })
  const tally = await load
  t.equal(tally.sent, 60)
  t.equal(tally.unexplained, 0, 'every failure is an answer cut after it started')
  t.ok(tally.cut <= openAtDeath, `at most the answers on its ${openAtDeath} open connections were cut (${tally.cut})`)
  t.equal(tally.ok + tally.cut, 60, 'everything else succeeded')
  const stats = scene.corral.balancer.instances[0]!
  t.ok(stats.failures > 0, 'the dead instance was charged with failures')
  await assertSettled(t, scene, tally)
})

t.test('an instance closes every connection after 900 bytes: only answers under way are lost', async (t) => {
  const scene = await startScene(t, { fake: FAKE })
  await scene.proxies[0]!.set({ closeAfterBytes: 900 })
  const tally = await runLoad('closes after 900 bytes', scene.url, { count: 60, concurrency: 9 })
  t.equal(tally.sent, 60)
  t.equal(tally.unexplained, 0, 'every failure is an answer cut after it started')
  t.ok(scene.proxies[0]!.stats().cuts >= 1, 'the proxy cut connections')
  t.ok(tally.cut <= scene.proxies[0]!.stats().cuts, 'no more answers lost than connections cut')
  await assertSettled(t, scene, tally)
})

assertNoOpenSockets(t)
