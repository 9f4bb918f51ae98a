/**
 * The memory store holds its entries in buffers of their own: a value that is a view on a larger
 * allocation (a Redis reply sliced out of a socket read, a small pooled Buffer) is copied, so the
 * store's byte bound bounds the memory it keeps alive.
 */
import t from 'tap'
import { MemoryStore } from '../../src/cache/memory-store.js'
import { createRedisClient } from '../../src/cache/redis-client.js'
import { RedisStore } from '../../src/cache/redis-store.js'
import { TieredStore } from '../../src/cache/tiered-store.js'
import { configFromObject } from '../../src/config/load-config.js'
import { createLogger } from '../../src/observability/logger.js'
import { startRedisServer } from '../fixtures/redis-server.js'

const memory = (): MemoryStore =>
  new MemoryStore({ maxBytes: 1024 * 1024, maxEntryBytes: 1024 * 1024, layerOf: () => 'embedding' })

t.test('a slice of a large buffer is stored as a copy of its own', async (t) => {
  const store = memory()
  const big = Buffer.alloc(64 * 1024, 7)
  const slice = big.subarray(1000, 1100)
  store.put('k', slice, 60_000)
  const held = store.get('k')!.value
  t.equal(held.buffer.byteLength, 100, 'the entry keeps 100 bytes alive, not 64 KiB')
  t.same(held, slice)
  const own = Buffer.allocUnsafeSlow(50).fill(1)
  store.put('own', own, 60_000)
  t.equal(store.get('own')!.value, own, 'a buffer that owns its memory is kept as is')
})

t.test('an entry read from Redis into the memory tier does not keep the socket read alive', async (t) => {
  const server = await startRedisServer(t)
  const config = configFromObject({ redis: { url: server.url, command_timeout: '1s' } }).config.redis!
  const redis = new RedisStore({ client: createRedisClient(config), retryIntervalMs: 100, logger: createLogger('silent') })
  t.teardown(() => redis.close())
  await redis.whenUp()
  const value = Buffer.alloc(3000, 'v')
  t.ok(await redis.set('retained:k', value, 60_000))
  const local = memory()
  const tiered = new TieredStore(local, redis, 60_000)
  const entry = await tiered.get('retained:k')
  t.same(entry?.value, value)
  const held = local.get('retained:k')!.value
  t.equal(held.buffer.byteLength, 3000, 'the tier holds exactly the value')
})
