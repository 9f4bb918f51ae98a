/**
 * Fault scenarios: Redis degrades under load, through the fault proxy in front of it. (1) Slow:
 * 600 ms on every chunk, more than twice `redis.command_timeout` (250 ms here); (2) flapping:
 * connections reset every other 100 ms. Every request succeeds, the store comes back, nothing is
 * left behind.
 */
import t from 'tap'
import { runRedisFault } from '../fixtures/fault-redis.js'
import { assertNoOpenSockets } from '../fixtures/fault-scene.js'

t.test('Redis slow (600 ms per chunk) under load: every request succeeds', (t) =>
  runRedisFault(t, {
    name: 'redis slow',
    start: (scene) => scene.redis!.proxy.set({ latencyMs: 600 }),
    stop: (scene) => scene.redis!.proxy.heal(),
  }))

t.test('Redis flapping (reset every other 100 ms) under load: every request succeeds', (t) => {
  let timer: NodeJS.Timeout | undefined
  let flips = 0
  let flipping = Promise.resolve()
  t.teardown(() => clearInterval(timer))
  return runRedisFault(t, {
    name: 'redis flapping',
    start(scene) {
      const proxy = scene.redis!.proxy
      timer = setInterval(() => {
        flipping = flipping.then(() => proxy.set({ mode: flips++ % 2 === 0 ? 'reset' : 'pass' }))
      }, 100)
    },
    async stop(scene) {
      clearInterval(timer)
      await flipping
      await scene.redis!.proxy.heal()
      t.comment(`flips: ${flips}, Redis connections reset: ${scene.redis!.proxy.stats().resets}`)
    },
  })
})

assertNoOpenSockets(t)
