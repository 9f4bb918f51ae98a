/**
 * corral on a real Redis Cluster (three masters, three replicas): the store contract through the
 * Cluster client, two corral replicas sharing one cache, and a master killed under a steady stream
 * of requests through both replicas: the cluster fails over and no request fails (misses while it
 * heals are fine), the data the failed master held is still there, and caching resumes.
 */
import t from 'tap'
import { createRedisClient } from '../../src/redis/redis-client.js'
import { RedisStore } from '../../src/cache/redis-store.js'
import { configFromObject } from '../../src/config/load-config.js'
import { createLogger } from '../../src/observability/logger.js'
import { storeContract } from '../fixtures/cache-store-contract.js'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { startRedisCluster } from '../fixtures/redis-cluster.js'
import { embedBody, expectSharedCache, twoReplicas } from '../fixtures/replicas.js'
import { steadyStream } from '../fixtures/steady-stream.js'

// Six redis-servers, a cluster create and a failover: on a busy 2-core machine these take a while.
t.setTimeout(240_000)

t.test('redis cluster', async (t) => {
  const cluster = await startRedisCluster(t)

  let n = 0
  storeContract(t, 'redis cluster', async () => {
    const redis = configFromObject({ redis: { cluster: cluster.urls, command_timeout: '500ms', retry_interval: '100ms' } }).config.redis!
    const store = new RedisStore({ client: createRedisClient(redis), retryIntervalMs: 100, logger: createLogger('silent') })
    await store.whenUp()
    // Keys of one prefix spread over every master: the flush must reach them all.
    return { store, prefix: `c${n++}:` }
  })

  t.test('two corral replicas share the cache; a master fails over and no request fails', async (t) => {
    const fake = await startFakeOllama()
    t.teardown(() => fake.close())
    const config = { redis: { cluster: cluster.urls, key_prefix: 'rc:', local_cache_size: 0, command_timeout: '200ms', retry_interval: '200ms' } }
    const [a, b] = await twoReplicas(t, fake, config)

    // Enough distinct inputs that every master holds some of them.
    const inputs = Array.from({ length: 12 }, (_, i) => `doc ${i}`)
    const embed = embedBody
    await expectSharedCache(t, a, b, fake, inputs)

    const keys = await cluster.keys('rc:embedding:*')
    t.equal(keys.length, inputs.length)
    const victim = await cluster.masterOf(keys[0]!)
    const onVictim = (await Promise.all(keys.map(async (k) => ((await cluster.masterOf(k)) === victim ? k : undefined)))).filter((k) => k !== undefined)
    t.ok(onVictim.length > 0 && onVictim.length < keys.length, `keys spread over masters (${onVictim.length} of ${keys.length} on the victim)`)

    const stream = steadyStream([a.url, b.url], (i) => embed(inputs[i % inputs.length]!))
    await stream.waitForOk(20)
    const killedAt = Date.now()
    const okBefore = stream.counts().ok
    await cluster.kill(victim)
    await cluster.waitHealthy(30_000)
    const healMs = Date.now() - killedAt
    const okDuring = stream.counts().ok - okBefore
    t.ok(okDuring > 0, `requests went on while the cluster failed over (${okDuring} in ${healMs} ms)`)
    // Healed as the replicas see it: both hit every input again (the promoted replica kept the data).
    await stream.waitUntilAllHit(inputs.length * 2, 30_000)
    const result = await stream.stop()
    t.equal(result.failed, 0, `no request failed (${result.ok} ok, ${result.misses} answered as misses while it healed) ${result.errors.join('; ')}`)
    // ioredis would re-send a command to a dead master every 100 ms, 16 times; corral's client
    // fails it at once instead, so a request is a miss, not a wait of over a second.
    t.ok(result.slowestMs < 1000, `no request held up by the dead master (slowest ${result.slowestMs} ms)`)
    t.ok(result.ok > 40, `a steady stream ran throughout (${result.ok} requests)`)
    t.equal(await cluster.keys('rc:embedding:*').then((k) => k.length), inputs.length, 'every cached vector survived the failover')

    // New answers are cached again, and shared.
    await send(a.url, 'POST', '/api/embed', embed('after failover'))
    await a.corral.cache!.settle()
    t.equal((await send(b.url, 'POST', '/api/embed', embed('after failover'))).headers['x-corral-cache'], 'hit', 'caching resumed on the healed cluster')
  })
})
