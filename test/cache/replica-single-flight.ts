/**
 * Single flight across replicas (`redis.single_flight`): a herd of identical generations spread
 * over two corral replicas sharing a real redis-server reaches the instance once (twice, once
 * per replica, without it); and the lock itself: a waiting replica takes over when the holder
 * releases without an answer or its lock expires, and gets the answer when the holder writes it.
 */
import t from 'tap'
import { KeySpace } from '../../src/cache/cache-key.js'
import { createRedisClient } from '../../src/redis/redis-client.js'
import { RedisStore } from '../../src/cache/redis-store.js'
import { ReplicaFlight } from '../../src/cache/replica-flight.js'
import { configFromObject } from '../../src/config/load-config.js'
import { createLogger } from '../../src/observability/logger.js'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { startRedisServer } from '../fixtures/redis-server.js'
import { startCorral } from '../fixtures/start-corral.js'

t.test('a herd of identical generations over two replicas', async (t) => {
  const redis = await startRedisServer(t)
  for (const singleFlight of [true, false]) {
    t.test(`redis.single_flight: ${singleFlight}`, async (t) => {
      const fake = await startFakeOllama()
      t.teardown(() => fake.close())
      // Slow enough that the whole herd arrives while the first answer is being generated.
      fake.setDefault({ kind: 'slow', tokenDelayMs: 30 })
      const config = { redis: { url: redis.url, key_prefix: `herd-${singleFlight}:`, local_cache_size: 0, single_flight: singleFlight, command_timeout: '500ms' } }
      const a = await startCorral(t, [fake.url], config)
      const b = await startCorral(t, [fake.url], config)
      await Promise.all([a.corral.cache!.whenStoreUp(), b.corral.cache!.whenStoreUp()])
      const body = { model: 'llama3.2', prompt: 'why is the sky blue?', options: { seed: 7 }, stream: false }
      const started = Date.now()
      const first = send(a.url, 'POST', '/api/generate', body)
      await fake.waitForRequests(1, '/api/generate')
      const herd = await Promise.all([first, ...Array.from({ length: 9 }, (_, i) => send(i % 2 === 0 ? b.url : a.url, 'POST', '/api/generate', body))])
      // Reported, not asserted: what waiting on another replica costs (the poll's backoff).
      t.comment(`herd of 10 over 2 replicas, single_flight ${singleFlight}: ${Date.now() - started} ms, ${fake.count('/api/generate')} upstream`)
      t.same(herd.map((r) => r.status), Array(10).fill(200), 'every request answered')
      const texts = new Set(herd.map((r) => (r.json as { response: string }).response))
      t.equal(texts.size, 1, 'the same answer for all')
      const upstream = fake.count('/api/generate')
      if (singleFlight) {
        t.equal(upstream, 1, 'the herd reached the instance once')
        t.equal(herd.filter((r) => r.headers['x-corral-cache'] === 'miss').length, 1, 'one miss, the rest coalesced')
      } else {
        t.equal(upstream, 2, 'without it: once per replica')
      }
    })
  }
})

t.test('the lock between two replicas', async (t) => {
  const server = await startRedisServer(t)
  const keys = new KeySpace('lock-test:')
  const replica = async (lockTtlMs: number): Promise<{ store: RedisStore; flight: ReplicaFlight }> => {
    const redis = configFromObject({ redis: { url: server.url, command_timeout: '500ms' } }).config.redis!
    const store = new RedisStore({ client: createRedisClient(redis), retryIntervalMs: 100, logger: createLogger('silent') })
    t.teardown(() => store.close())
    await store.whenUp()
    return { store, flight: new ReplicaFlight(store, keys, lockTtlMs) }
  }
  const one = await replica(60_000)
  const two = await replica(60_000)

  const answered = keys.entry('inference', 'm', 'answered')
  t.equal(await one.flight.turn(answered), 'claimed', 'the first replica takes the lock')
  const waiting = two.flight.turn(answered)
  await one.store.set(answered, Buffer.from('the answer'), 60_000)
  await one.flight.release(answered)
  const got = await waiting
  t.equal(typeof got === 'object' && got.value.toString(), 'the answer', 'the waiting replica gets the answer the holder wrote')

  const unanswered = keys.entry('inference', 'm', 'unanswered')
  t.equal(await one.flight.turn(unanswered), 'claimed')
  const takeover = two.flight.turn(unanswered)
  await one.flight.release(unanswered)
  t.equal(await takeover, 'claimed', 'released without an answer: the waiting replica takes over')
  await one.flight.release(unanswered)
  t.equal(await one.store.held(keys.lock(unanswered)), true, "a replica cannot release another's lock")
  await two.flight.release(unanswered)
  t.equal(await one.store.held(keys.lock(unanswered)), false, 'its holder can')
  t.equal(await one.flight.turn(unanswered), 'claimed', 'then it is free again')

  const short = await replica(300)
  const abandoned = keys.entry('inference', 'm', 'abandoned')
  t.equal(await short.flight.turn(abandoned), 'claimed', 'a holder that dies never releases')
  t.equal(await (await replica(300)).flight.turn(abandoned), 'claimed', 'its lock expires and another replica takes over')

  await server.kill()
  t.equal(await two.flight.turn(keys.entry('inference', 'm', 'down')), 'claimed', 'Redis down: every replica goes upstream')
})
