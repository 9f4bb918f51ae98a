/**
 * Fault scenarios: Redis degrades under load, through the fault proxy in front of it. (1) Slow:
 * 600 ms on every chunk, more than twice `redis.command_timeout` (250 ms here); (2) flapping:
 * connections reset, then let through, every 5 answers. Every request succeeds, the store comes back, nothing is
 * left behind.
 */
import t from 'tap'
import { runRedisFault } from '../fixtures/fault-redis.js'
import { assertNoOpenSockets, type Scene } from '../fixtures/fault-scene.js'

t.test('Redis slow (600 ms per chunk) under load: every request succeeds', (t) =>
  runRedisFault(t, {
    name: 'redis slow',
    start: (scene) => scene.redis!.proxy.set({ latencyMs: 600 }),
    stop: (scene) => scene.redis!.proxy.heal(),
  }))

t.test('Redis flapping (connections reset, then passed, every 5 answers) under load: every request succeeds', (t) => {
  // The flaps follow the load, not the clock: on a quiet machine 60 answers take less than one
  // timer tick, on a busy one several seconds; either way Redis flaps 12 times while it runs.
  let flips = 0
  const flip = (scene: Scene): Promise<void> => scene.redis!.proxy.set({ mode: flips++ % 2 === 0 ? 'reset' : 'pass' })
  return runRedisFault(t, {
    name: 'redis flapping',
    start: flip,
    answered: (scene, answered) => (answered % 5 === 0 ? flip(scene) : undefined),
    async stop(scene) {
      await scene.redis!.proxy.heal()
      t.comment(`flips: ${flips}, Redis connections reset: ${scene.redis!.proxy.stats().resets}`)
    },
  })
})

assertNoOpenSockets(t)
