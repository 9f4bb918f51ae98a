/**
 * `planReload`: the diff between the running and a new configuration, pure.
 */
import t from 'tap'
import { configFromObject } from '../../src/config/load-config.js'
import type { Config } from '../../src/config/config.js'
import { planReload } from '../../src/config/reload-plan.js'

const config = (raw: Record<string, unknown> = {}): Config =>
  configFromObject({ instances: [{ name: 'a', url: 'http://a:11434' }], ...raw }).config

t.test('an identical configuration changes nothing', async (t) => {
  const plan = planReload(config(), config())
  t.same(plan.changes, [])
  t.same(plan.restartRequired, [])
})

t.test('instances by name: added, removed, moved, re-weighted, re-capped', async (t) => {
  const prev = config({
    instances: [
      { name: 'a', url: 'http://a:11434' },
      { name: 'b', url: 'http://b:11434' },
      { name: 'c', url: 'http://c:11434', weight: 2 },
    ],
  })
  const next = config({
    instances: [
      { name: 'c', url: 'http://c:11434', weight: 5, max_concurrency: 1 },
      { name: 'b', url: 'http://b2:11434' },
      { name: 'd', url: 'http://d:11434' },
    ],
  })
  t.same(planReload(prev, next).changes, [
    'instances.c.weight: 2 -> 5',
    'instances.c.maxConcurrency: learned -> 1',
    'instances.b.url: http://b:11434 -> http://b2:11434',
    'instances.d: added (http://d:11434)',
    'instances.a: removed (http://a:11434)',
  ])
})

t.test('settings that need a restart keep their running values and are listed', async (t) => {
  const prev = config()
  const next = config({
    listen: '0.0.0.0:9000',
    metrics: { listen: '127.0.0.1:9100' },
    redis: { url: 'redis://r:6379' },
    cache: { memory: { max_size: '1MiB' }, max_entry_size: '1KiB', layers: { embedding: { ttl: '1h' } } },
    server: { max_header_size: '8KiB', headers_timeout: '5s' },
  })
  const plan = planReload(prev, next)
  t.same(plan.restartRequired, ['listen', 'metrics.listen', 'redis', 'cache.memory.max_size', 'cache.max_entry_size', 'server.max_header_size'])
  t.same(plan.changes, ['cache.layers.embedding.ttlMs: 604800000 -> 3600000', 'server.headersTimeoutMs: 10000 -> 5000'])
  t.same(plan.applied.listen, prev.listen)
  t.equal(plan.applied.redis, undefined)
  t.equal(plan.applied.metrics.listen, undefined)
  t.equal(plan.applied.cache.memoryMaxBytes, prev.cache.memoryMaxBytes)
  t.equal(plan.applied.cache.maxEntryBytes, prev.cache.maxEntryBytes)
  t.equal(plan.applied.server.maxHeaderBytes, prev.server.maxHeaderBytes)
  t.equal(plan.applied.cache.layers.embedding.ttlMs, 3600_000, 'the rest is applied')
  t.equal(plan.applied.server.headersTimeoutMs, 5000)
  t.ok(Object.isFrozen(plan.applied) && Object.isFrozen(plan.applied.cache) && Object.isFrozen(plan.applied.server), 'frozen like any Config')
})

t.test('values of secret-looking keys are never shown', async (t) => {
  const prev = { ...config(), auth: { keys: ['k1'], jwt_secret: 'one' } } as unknown as Config
  const next = { ...config(), auth: { keys: ['k2'], jwt_secret: 'two' } } as unknown as Config
  const { changes } = planReload(prev, next)
  t.same(changes, ['auth.keys: changed', 'auth.jwt_secret: changed'])
  t.notMatch(changes.join(' '), /k1|k2|one|two/)
})
