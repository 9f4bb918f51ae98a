/**
 * Fault scenarios: Redis goes away under load. (1) redis-server is killed and started again;
 * (2) it is frozen (SIGSTOP) and thawed. Every request succeeds (the cache falls back to a miss),
 * the store comes back, nothing is left behind.
 */
import t from 'tap'
import { runRedisFault } from '../fixtures/fault-redis.js'
import { assertNoOpenSockets } from '../fixtures/fault-scene.js'

t.test('Redis killed under load, then restarted: every request succeeds', (t) =>
  runRedisFault(t, {
    name: 'redis killed',
    start: (scene) => scene.redis!.server.kill(),
    stop: (scene) => scene.redis!.server.restart(),
  }))

t.test('Redis frozen (SIGSTOP) under load, then thawed: every request succeeds', (t) =>
  runRedisFault(t, {
    name: 'redis frozen',
    start: (scene) => scene.redis!.server.freeze(),
    stop: (scene) => scene.redis!.server.thaw(),
  }))

assertNoOpenSockets(t)
