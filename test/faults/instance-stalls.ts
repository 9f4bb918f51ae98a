/**
 * Fault scenarios: an instance stalls. (1) It accepts connections and never answers (a blackhole
 * in the fault proxy): with a short `proxy.first_byte_timeout`, each request sent there is
 * retried elsewhere and succeeds, and the stalled upstream connections are closed, not leaked.
 * (2) It slows down (latency on every chunk): load moves away from it and nothing fails.
 */
import t from 'tap'
import { runLoad } from '../fixtures/fault-load.js'
import { assertNoOpenSockets, assertSettled, startScene, within } from '../fixtures/fault-scene.js'

t.test('an instance hangs before headers: requests sent there are retried elsewhere after the first-byte timeout', async (t) => {
  const scene = await startScene(t, { config: { proxy: { first_byte_timeout: '1s' } } })
  await scene.proxies[0]!.set({ mode: 'blackhole' })
  // Keep-alive connections left idle by model discovery: open, but no request stuck on them.
  const idle = scene.proxies[0]!.open
  const tally = await runLoad('hangs before headers', scene.url, { count: 60, concurrency: 9 })
  t.equal(tally.sent, 60)
  t.equal(tally.ok, 60, 'every request succeeded')
  t.ok(scene.proxies[0]!.stats().total >= 1, 'the stalled instance was tried')
  t.equal(scene.fakes[0]!.count('/api/generate') + scene.fakes[0]!.count('/api/chat') + scene.fakes[0]!.count('/api/embed'), 0, 'it never got a request')
  t.ok(scene.logs.some((l) => l.msg === 'attempt failed' && l.kind === 'first_byte_timeout'), 'the timeouts are logged')
  // Every connection stuck in the blackhole was closed by corral when its request timed out
  // (an idle keep-alive connection no request used may stay open until its keep-alive ends).
  await within(scene.proxies[0]!.until((s) => s.open <= idle), 'stalled connections closed')
  t.ok(scene.proxies[0]!.open <= idle, 'no stalled connection kept')
  await assertSettled(t, scene, tally)
})

t.test('an instance slows down: load moves away from it, nothing fails', async (t) => {
  const scene = await startScene(t, { fake: { tokens: 10, tokenDelayMs: 2 } })
  // Warm the scores with a normal load first, then slow one instance down to 80 ms per chunk.
  const warm = await runLoad('before slowdown', scene.url, { count: 30, concurrency: 6, tag: 'warm' })
  t.equal(warm.ok, 30)
  const before = scene.fakes.map((f) => f.requests.length)
  await scene.proxies[0]!.set({ latencyMs: 80 })
  const tally = await runLoad('slows down', scene.url, { count: 60, concurrency: 6 })
  t.equal(tally.ok, 60, 'every request succeeded')
  const during = scene.fakes.map((f, i) => f.requests.length - before[i]!)
  t.comment(`requests per instance while i0 was slow: ${during.join(', ')}`)
  t.ok(during[0]! < Math.min(during[1]!, during[2]!), 'the slow instance got the fewest')
  await scene.proxies[0]!.heal()
  await assertSettled(t, scene, tally)
})

assertNoOpenSockets(t)
