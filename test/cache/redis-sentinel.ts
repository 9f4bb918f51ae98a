/**
 * corral on a real Redis Sentinel group (a master, a replica, three sentinels): the store
 * contract through Sentinel, two corral replicas sharing one cache, and the master killed under a
 * steady stream of requests through both replicas: the sentinels promote the replica, no request
 * fails (misses while it heals are fine), the cached data survives, and caching resumes.
 */
import t from 'tap'
import { createRedisClient } from '../../src/redis/redis-client.js'
import { RedisStore } from '../../src/cache/redis-store.js'
import { configFromObject } from '../../src/config/load-config.js'
import { createLogger } from '../../src/observability/logger.js'
import { storeContract } from '../fixtures/cache-store-contract.js'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { startRedisSentinel } from '../fixtures/redis-sentinel.js'
import { embedBody, expectSharedCache, twoReplicas } from '../fixtures/replicas.js'
import { steadyStream } from '../fixtures/steady-stream.js'

// Five redis-servers and a failover: on a busy 2-core machine these take a while.
t.setTimeout(240_000)

t.test('redis sentinel', async (t) => {
  const group = await startRedisSentinel(t)
  const redis = { sentinels: group.sentinels, name: group.name, command_timeout: '200ms', retry_interval: '200ms' }

  storeContract(t, 'redis sentinel', async () => {
    const store = new RedisStore({ client: createRedisClient(configFromObject({ redis }).config.redis!), retryIntervalMs: 100, logger: createLogger('silent') })
    await store.whenUp()
    return { store, prefix: 'contract:' }
  })

  t.test('two corral replicas share the cache; the master fails over and no request fails', async (t) => {
    const fake = await startFakeOllama()
    t.teardown(() => fake.close())
    const config = { redis: { ...redis, key_prefix: 'rs:', local_cache_size: 0 } }
    const [a, b] = await twoReplicas(t, fake, config)

    const inputs = Array.from({ length: 6 }, (_, i) => `doc ${i}`)
    const embed = embedBody
    await expectSharedCache(t, a, b, fake, inputs)
    await group.waitReplicated()

    const stream = steadyStream([a.url, b.url], (i) => embed(inputs[i % inputs.length]!))
    await stream.waitForOk(20)
    const killedAt = Date.now()
    const okBefore = stream.counts().ok
    const old = await group.killMaster()
    await group.waitFailover(old)
    const okDuring = stream.counts().ok - okBefore
    t.ok(okDuring > 0, `requests went on while the sentinels failed over (${okDuring} in ${Date.now() - killedAt} ms)`)
    t.not(await group.masterPort(), old, 'the replica was promoted')
    // Healed as the corral replicas see it: they hit every input again, from the promoted replica.
    await stream.waitUntilAllHit(inputs.length * 2, 30_000)
    const result = await stream.stop()
    t.equal(result.failed, 0, `no request failed (${result.ok} ok, ${result.misses} answered as misses while it healed) ${result.errors.join('; ')}`)
    t.ok(result.slowestMs < 1000, `no request held up by the dead master (slowest ${result.slowestMs} ms)`)

    await send(a.url, 'POST', '/api/embed', embed('after failover'))
    await a.corral.cache!.settle()
    t.equal((await send(b.url, 'POST', '/api/embed', embed('after failover'))).headers['x-corral-cache'], 'hit', 'caching resumed on the new master')
  })
})
