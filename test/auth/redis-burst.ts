/**
 * A burst never exceeds a limit shared through Redis: rpm 5 and 50 requests at once (with the
 * cache's 50 ms command timeout) admit exactly 5, on one replica or spread over two, also when
 * Redis answers slower than `redis.command_timeout`; with Redis frozen, each replica admits at
 * most the key's limit from memory.
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { startFaultProxy } from '../fixtures/fault-proxy.js'
import { startRedisServer } from '../fixtures/redis-server.js'
import { startCorral } from '../fixtures/start-corral.js'

const APP = 'app-key-6a9c2f5e8b1d4073'
const bearer = { authorization: `Bearer ${APP}` }
/** The middle of a minute: the whole burst falls into one window. */
const NOW = Date.UTC(2026, 0, 1, 12, 0, 30)

function configFor(redisUrl: string): Record<string, unknown> {
  return {
    redis: { url: redisUrl, key_prefix: `corral-burst-${randomBytes(4).toString('hex')}:`, command_timeout: '50ms' },
    auth: { enabled: true, keys: [{ name: 'app', key: APP, rpm: 5 }] },
  }
}

async function burst(urls: readonly string[], perReplica: number): Promise<number> {
  const statuses = await Promise.all(
    urls.flatMap((url) => Array.from({ length: perReplica }, () => send(url, 'GET', '/api/tags', undefined, bearer).then((r) => r.status))),
  )
  for (const s of statuses) if (s !== 200 && s !== 429) throw new Error(`unexpected status ${s}`)
  return statuses.filter((s) => s === 200).length
}

t.test('50 requests at once on one replica: exactly rpm admitted', async (t) => {
  const redis = await startRedisServer(t)
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const a = await startCorral(t, [fake.url], configFor(redis.url), { now: () => NOW })
  await a.corral.auth.limitsShared()
  t.equal(await burst([a.url], 50), 5)
  t.equal(await burst([a.url], 100), 0, 'and nothing more this minute')
})

t.test('25 at once on each of two replicas: rpm admitted in all', async (t) => {
  const redis = await startRedisServer(t)
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const config = configFor(redis.url)
  const a = await startCorral(t, [fake.url], config, { now: () => NOW })
  const b = await startCorral(t, [fake.url], config, { now: () => NOW })
  await Promise.all([a.corral.auth.limitsShared(), b.corral.auth.limitsShared()])
  t.equal(await burst([a.url, b.url], 25), 5)
})

t.test('Redis slower than redis.command_timeout: the limits still wait for it', async (t) => {
  const redis = await startRedisServer(t)
  const slow = await startFaultProxy(redis.port)
  t.teardown(() => slow.close())
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const config = configFor(slow.url.replace('http:', 'redis:'))
  const a = await startCorral(t, [fake.url], config, { now: () => NOW })
  const b = await startCorral(t, [fake.url], config, { now: () => NOW })
  await Promise.all([a.corral.auth.limitsShared(), b.corral.auth.limitsShared()])
  // 40 ms each way: every round trip takes longer than the 50 ms command timeout of the cache.
  await slow.set({ latencyMs: 40 })
  t.equal(await burst([a.url, b.url], 25), 5)
  t.notOk(a.logs.some((l) => l.msg === 'Redis unavailable: rate limits counted per replica in memory'), 'Redis was never given up on')
})

t.test('Redis frozen: each replica admits at most the limit from memory', async (t) => {
  const redis = await startRedisServer(t)
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const config = configFor(redis.url)
  const a = await startCorral(t, [fake.url], config, { now: () => NOW })
  const b = await startCorral(t, [fake.url], config, { now: () => NOW })
  await Promise.all([a.corral.auth.limitsShared(), b.corral.auth.limitsShared()])
  t.equal(await burst([a.url], 2), 2, 'two through Redis on replica a')
  redis.freeze()
  t.teardown(() => redis.thaw())
  const [onA, onB] = await Promise.all([burst([a.url], 20), burst([b.url], 20)])
  t.equal(onA, 3, "replica a's memory count includes what it admitted through Redis")
  t.equal(onB, 5, 'replica b: its limit, no more')
  t.ok(a.logs.some((l) => l.msg === 'Redis unavailable: rate limits counted per replica in memory'))
})
