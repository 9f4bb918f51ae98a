/**
 * corral with Redis: answers are shared through Redis, and Redis down, frozen or back never makes
 * a request fail (every request is 200, answered as a miss), each state change logged once.
 */
import t from 'tap'
import { Redis } from 'ioredis'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { startRedisServer } from '../fixtures/redis-server.js'
import { startCorral, type StartedCorral } from '../fixtures/start-corral.js'

const redisState = (c: StartedCorral): string | undefined => c.corral.cache!.report().redis?.state

t.test('answers are stored in Redis, shared by two corrals, flushed by prefix', async (t) => {
  const redis = await startRedisServer(t)
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  // A command timeout for a machine busy with other tests: this test is about sharing, not speed.
  const config = { redis: { url: redis.url, key_prefix: 'share:', local_cache_size: 0, command_timeout: '2s' } }
  const a = await startCorral(t, [fake.url], config)
  const b = await startCorral(t, [fake.url], config)
  await Promise.all([a.corral.cache!.whenStoreUp(), b.corral.cache!.whenStoreUp()])
  const body = { model: 'nomic-embed-text', input: ['r1', 'r2'] }
  const first = await send(a.url, 'POST', '/api/embed', body)
  t.equal(first.headers['x-corral-cache'], 'miss')
  await a.corral.cache!.settle()
  const fromB = await send(b.url, 'POST', '/api/embed', body)
  t.equal(fromB.headers['x-corral-cache'], 'hit', 'the other replica hits through Redis')
  t.same((fromB.json as { embeddings: unknown }).embeddings, (first.json as { embeddings: unknown }).embeddings)
  t.match(b.corral.cache!.report(), { store: 'redis', redis: { state: 'up', errors: 0 } })

  const admin = new Redis(redis.url)
  t.teardown(() => admin.quit())
  await admin.set('foreign:key', 'not corral', 'EX', 60)
  t.same((await admin.keys('share:*')).length, 2)
  t.same((await send(a.url, 'DELETE', '/api/cache?layer=chunk')).json, { deleted: 2, layer: 'chunk', model: null })
  t.same(await admin.keys('share:*'), [])
  t.equal(await admin.get('foreign:key'), 'not corral', 'only corral keys are deleted')
})

t.test('fail-open: Redis killed, restarted, frozen, thawed; every request 200', async (t) => {
  const redis = await startRedisServer(t)
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const c = await startCorral(t, [fake.url], {
    redis: { url: redis.url, key_prefix: 'fo:', local_cache_size: 0, retry_interval: '100ms', command_timeout: '250ms' },
  })
  await c.corral.cache!.whenStoreUp()
  const logged = (prefix: string): number => c.logs.filter((l) => l.msg.startsWith(prefix)).length
  let n = 0
  const burst = async (label: string): Promise<void> => {
    for (let i = 0; i < 10; i++) {
      const started = Date.now()
      const res = await send(c.url, 'POST', i % 2 === 0 ? '/api/embed' : '/api/generate',
        i % 2 === 0 ? { model: 'nomic-embed-text', input: `q${n++ % 4}` } : { model: 'llama3.2', prompt: `p${n++ % 4}`, options: { seed: 1 }, stream: false })
      t.equal(res.status, 200, `${label}: request ${i}`)
      // A frozen Redis without the command timeout would hold the request for as long as it stays frozen.
      t.ok(Date.now() - started < 3000, `${label}: request ${i} not held up`)
    }
  }
  await burst('up')
  await redis.kill()
  await burst('killed')
  t.equal(redisState(c), 'down')
  t.equal(logged('redis down'), 1, 'down logged once')
  t.equal((await send(c.url, 'PUT', '/api/cache/chunks/d1', { page: 1 })).status, 503, 'chunk metadata: not stored, and it says so')
  t.equal((await send(c.url, 'GET', '/api/cache/chunks/d1')).status, 503)
  t.equal((await send(c.url, 'DELETE', '/api/cache')).status, 503, 'a flush cannot pretend either')
  await redis.restart()
  await c.corral.cache!.whenStoreUp()
  t.equal(logged('redis up'), 1, 'up logged once')
  await burst('restarted')
  redis.freeze()
  t.teardown(() => redis.thaw())
  await burst('frozen')
  t.equal(redisState(c), 'down')
  t.equal(logged('redis down'), 2)
  redis.thaw()
  // The background probe runs when a request finds Redis skipped after the retry interval.
  while (redisState(c) !== 'up') await send(c.url, 'POST', '/api/embed', { model: 'nomic-embed-text', input: 'probe' })
  t.equal(logged('redis up'), 2)
  const stats = c.corral.cache!.report()
  t.ok(stats.redis!.errors > 0)
  t.equal(stats.redis!.state_changes, 5, 'connected, down, up, down, up')
  await c.corral.cache!.settle()
  await send(c.url, 'POST', '/api/embed', { model: 'nomic-embed-text', input: 'after' })
  await c.corral.cache!.settle()
  t.equal((await send(c.url, 'POST', '/api/embed', { model: 'nomic-embed-text', input: 'after' })).headers['x-corral-cache'], 'hit', 'caching resumed')
})
