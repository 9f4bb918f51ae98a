/**
 * The memory store holds its entries in memory of its own: a value that is a view on a larger
 * allocation (a Redis reply sliced out of a socket read, a small pooled Buffer) is copied into the
 * store's slabs (small values) or a buffer of its own (large ones), so the store's byte bound
 * bounds the memory it keeps alive.
 */
import t from 'tap'
import { MemoryStore } from '../../src/cache/memory-store.js'
import { createRedisClient } from '../../src/redis/redis-client.js'
import { RedisStore } from '../../src/cache/redis-store.js'
import { TieredStore } from '../../src/cache/tiered-store.js'
import { configFromObject } from '../../src/config/load-config.js'
import { createLogger } from '../../src/observability/logger.js'
import { startRedisServer } from '../fixtures/redis-server.js'

const memory = (): MemoryStore =>
  new MemoryStore({ maxBytes: 1024 * 1024, maxEntryBytes: 1024 * 1024, layerOf: () => 'embedding' })

const SLAB = 1024 * 1024

t.test('a slice of a large buffer is stored as a copy in the store memory', async (t) => {
  const store = memory()
  const big = Buffer.alloc(64 * 1024, 7)
  const slice = big.subarray(1000, 1100)
  store.put('k', slice, 60_000)
  const held = store.get('k')!.value
  t.not(held.buffer, big.buffer, 'the entry does not keep the 64 KiB read alive')
  t.equal(held.buffer.byteLength, SLAB, 'it lives in a slab of the store')
  t.same(held, slice)
  const own = Buffer.allocUnsafeSlow(50).fill(1)
  store.put('own', own, 60_000)
  t.equal(store.get('own')!.value.buffer, held.buffer, 'small values share the slab')
  const large = Buffer.alloc(200 * 1024, 3)
  store.put('large', large.subarray(0, 100 * 1024), 60_000)
  t.equal(store.get('large')!.value.buffer.byteLength, 100 * 1024, 'a large value gets a buffer of exactly its size')
})

t.test('a value read from a mostly dead slab moves to the current one', async (t) => {
  const store = new MemoryStore({ maxBytes: 8 * SLAB, maxEntryBytes: SLAB, layerOf: () => 'chunk' })
  const value = (i: number): Buffer => Buffer.alloc(3080, i)
  for (let i = 0; i < 400; i++) store.put(`k${i}`, value(i), 60_000) // the first slab holds 340
  const first = store.get('k0')!.value.buffer
  const second = store.get('k399')!.value.buffer
  t.not(second, first, 'the slab filled up and a second one took over')
  for (let i = 1; i < 100; i++) await store.delete(`k${i}`)
  t.equal(store.get('k0')!.value.buffer, first, 'a value of a slab still mostly alive stays')
  for (let i = 100; i < 250; i++) await store.delete(`k${i}`)
  const moved = store.get('k0')!
  t.not(moved.value.buffer, first, 'k0 moved out of its slab, now mostly dead')
  t.equal(moved.value.buffer, second, 'into the current slab')
  t.same(moved.value, value(0), 'with its bytes')
  t.equal(store.get('k399')!.value.buffer, second, 'values of the current slab never move')
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
  t.equal(held.buffer.byteLength, SLAB, 'the tier holds the value in its own slab, not the socket read')
  t.same(held, value)
})
