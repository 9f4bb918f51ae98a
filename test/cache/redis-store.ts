/**
 * The Redis store against a real redis-server: the contract (alone and with a memory tier in
 * front), compact vectors, and failing open when Redis is killed or frozen.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { KeySpace } from '../../src/cache/cache-key.js'
import { MemoryStore } from '../../src/cache/memory-store.js'
import { createRedisClient } from '../../src/redis/redis-client.js'
import { RedisStore } from '../../src/cache/redis-store.js'
import { TieredStore } from '../../src/cache/tiered-store.js'
import { float32Text } from '../../src/cache/float32-format.js'
import { StoredVector } from '../../src/cache/vector-codec.js'
import { configFromObject } from '../../src/config/load-config.js'
import { createLogger } from '../../src/observability/logger.js'
import { logCapture } from '../fixtures/start-corral.js'
import { startRedisServer } from '../fixtures/redis-server.js'
import { storeContract } from '../fixtures/cache-store-contract.js'

// The contract checks what a store answers, not how fast: a command timeout long enough for a
// machine busy with other tests. The fail-open test sets its own short one.
const redisConfig = (url: string, extra: Record<string, unknown> = {}) =>
  configFromObject({ redis: { url, command_timeout: '2s', retry_interval: '100ms', ...extra } }).config.redis!

t.test('with a redis-server', async (t) => {
  const server = await startRedisServer(t)
  let n = 0
  const quiet = createLogger('silent')
  const make = async (): Promise<RedisStore> => {
    const store = new RedisStore({ client: createRedisClient(redisConfig(server.url)), retryIntervalMs: 100, logger: quiet })
    await store.whenUp()
    return store
  }

  storeContract(t, 'redis', async () => {
    const prefix = `t${n++}:`
    return { store: await make(), prefix }
  })
  storeContract(t, 'redis with a memory tier', async () => {
    const prefix = `t${n++}:`
    const keys = new KeySpace(prefix)
    const local = new MemoryStore({ maxBytes: 1024 * 1024, maxEntryBytes: 1024 * 1024, layerOf: (k) => keys.layerOf(k) })
    return { store: new TieredStore(local, await make(), 100), prefix }
  })

  t.test('a 768-dimension vector: a value of at most 3,500 bytes in Redis', async (t) => {
    const store = await make()
    t.teardown(() => store.close())
    // As Ollama writes them: float32 values in their shortest text.
    const numbers = Array.from({ length: 768 }, (_, i) => Number(float32Text(Math.fround(Math.cos(i) / 20))))
    const vector = StoredVector.fromNumbers(numbers, 5, true)
    const value = vector.encode()!
    t.ok(value.length <= 3500, `value ${value.length} bytes (Ollama's JSON: ${JSON.stringify(numbers).length})`)
    t.ok(await store.set('v:embedding:m:one', value, 60_000))
    const admin = new Redis(server.url)
    t.teardown(() => admin.quit())
    const usage = await admin.memory('USAGE', 'v:embedding:m:one')
    // Key, dict entry and jemalloc's 3,584-byte size class for a 3,080-byte string.
    t.ok(typeof usage === 'number' && usage < 4096, `MEMORY USAGE ${usage} bytes`)
    const back = StoredVector.decode((await store.get('v:embedding:m:one'))!.value)!
    t.same(JSON.parse(back.json().toString()), numbers, 'the same numbers as the JSON it came from')
  })
})

t.test('fails open: killed or frozen Redis makes misses, each state change logged once', async (t) => {
  const server = await startRedisServer(t)
  const { stream, lines } = logCapture()
  const config = redisConfig(server.url, { command_timeout: '250ms' })
  const store = new RedisStore({ client: createRedisClient(config), retryIntervalMs: 100, logger: createLogger('info', stream) })
  t.teardown(() => store.close())
  await store.whenUp()
  const down = (): number => lines.filter((l) => l.msg.startsWith('redis down')).length
  const up = (): number => lines.filter((l) => l.msg.startsWith('redis up')).length
  t.ok(await store.set('f:embedding:m:a', Buffer.from('v'), 60_000))

  await server.kill()
  for (let i = 0; i < 20; i++) {
    const started = Date.now()
    t.equal(await store.get('f:embedding:m:a'), undefined)
    t.equal(await store.set('f:embedding:m:b', Buffer.from('v'), 60_000), false)
    // Bounded by the connection failing at once, far below a command timeout of waiting.
    t.ok(Date.now() - started < 2000, 'answers without hanging')
  }
  t.equal(store.health().state, 'down')
  t.equal(down(), 1, 'down logged once')
  await server.restart()
  await store.whenUp()
  t.equal(up(), 1, 'up logged once')
  t.ok(await store.set('f:embedding:m:c', Buffer.from('v'), 60_000), 'writes resume')

  server.freeze()
  t.teardown(() => server.thaw())
  const frozenAt = Date.now()
  const results = await Promise.all(Array.from({ length: 10 }, () => store.get('f:embedding:m:c')))
  t.same(results, Array(10).fill(undefined), 'a frozen Redis is a miss')
  // Without the command timeout these reads would wait for as long as Redis stays frozen.
  t.ok(Date.now() - frozenAt < 4000, `bounded by the command timeout (${Date.now() - frozenAt} ms for 10 reads)`)
  t.equal(store.health().state, 'down')
  t.equal(down(), 2)
  const errorsBefore = store.health().errors
  t.equal(await store.get('f:embedding:m:c'), undefined)
  t.equal(store.health().errors, errorsBefore, 'while down, Redis is skipped: no command sent, none timed out')
  server.thaw()
  // No request comes: the store probes by itself every retry interval while Redis is down.
  await store.whenUp()
  t.equal((await store.get('f:embedding:m:c'))?.value.toString(), 'v', 'reads resume')
  t.equal(up(), 2)
  t.ok(store.health().errors > 0)
  t.equal(store.health().stateChanges, 5, 'connected, down, up, down, up')
})

t.test('the circuit: one slow command is one miss; three in a row open it; the probe closes it', async (t) => {
  // Pure decision logic: a scripted client instead of a server.
  const { EventEmitter } = await import('node:events')
  let failNext = 0
  let gets = 0
  let pings = 0
  let failPings = 0
  const client = Object.assign(new EventEmitter(), {
    getBuffer: async () => {
      gets++
      if (failNext > 0) {
        failNext--
        throw new Error('Command timed out')
      }
      return Buffer.from('v')
    },
    ping: async () => {
      pings++
      if (failPings > 0) {
        failPings--
        throw new Error('Connection is closed.')
      }
      return 'PONG'
    },
    quit: async () => 'OK',
    disconnect: () => {},
  })
  const store = new RedisStore({ client: client as never, retryIntervalMs: 50, logger: createLogger('silent') })
  client.emit('ready')
  failNext = 1
  t.equal(await store.get('k'), undefined, 'the slow command is a miss')
  t.equal((await store.get('k'))?.value.toString(), 'v', 'the next one goes to Redis')
  t.equal(store.health().state, 'up')
  failNext = 3
  for (let i = 0; i < 3; i++) await store.get('k')
  t.equal(store.health().state, 'down', 'three failures in a row')
  const getsBefore = gets
  t.equal(await store.get('k'), undefined, 'skipped while down')
  t.equal(gets, getsBefore, 'no command sent while down')
  t.equal(pings, 0, 'no probe before the retry interval')
  // No request comes: a timer probes after the retry interval; a failed probe schedules the next.
  failPings = 1
  await store.whenUp(5000)
  t.equal(pings, 2, 'the first probe failed, the second found Redis up')
  t.equal((await store.get('k'))?.value.toString(), 'v')
  t.equal(store.health().errors, 5)
})
