/**
 * Per-key limits shared through a real redis-server by two corral replicas: the minute's count
 * and the requests in flight are one budget for both; with Redis killed, both keep serving and
 * count in memory instead (a Redis outage never becomes an error).
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import { Redis } from 'ioredis'
import t from 'tap'
import { request } from 'undici'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { startRedisServer } from '../fixtures/redis-server.js'
import { startCorral } from '../fixtures/start-corral.js'

const APP = 'app-key-6a9c2f5e8b1d4073'
const STREAMER = 'stream-key-0f3a6d9c2e5b8147'
const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` })

/** Re-checks `condition` until it holds; fails after `deadlineMs`. */
async function until(condition: () => Promise<boolean>, deadlineMs = 5000): Promise<void> {
  const end = Date.now() + deadlineMs
  while (!(await condition())) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await delay(10)
  }
}

t.test('two replicas share one budget through Redis; with Redis killed both serve from memory', async (t) => {
  const redis = await startRedisServer(t)
  const fake = await startFakeOllama({ tokens: 100_000, tokenDelayMs: 20 })
  t.teardown(() => fake.close())
  const prefix = `corral-auth-${randomBytes(4).toString('hex')}:`
  const now = Date.UTC(2026, 0, 1, 12, 0, 30)
  const config = {
    redis: { url: redis.url, key_prefix: prefix, command_timeout: '500ms' },
    auth: {
      enabled: true,
      keys: [
        { name: 'app', key: APP, rpm: 4 },
        { name: 'streamer', key: STREAMER, max_concurrency: 1 },
      ],
    },
  }
  const a = await startCorral(t, [fake.url], config, { now: () => now })
  const b = await startCorral(t, [fake.url], config, { now: () => now })
  await Promise.all([a.corral.auth.limitsShared(), b.corral.auth.limitsShared()])

  const tags = (url: string, key: string): Promise<number> => send(url, 'GET', '/api/tags', undefined, bearer(key)).then((r) => r.status)
  t.same([await tags(a.url, APP), await tags(b.url, APP), await tags(a.url, APP), await tags(b.url, APP)], [200, 200, 200, 200])
  const overA = await send(a.url, 'GET', '/api/tags', undefined, bearer(APP))
  t.equal(overA.status, 429, 'the fifth request of the minute, on either replica')
  t.equal(overA.headers['retry-after'], '30')
  t.equal(await tags(b.url, APP), 429)

  // One stream in flight through replica a takes the key's only slot on replica b too.
  const controller = new AbortController()
  const stream = await request(`${a.url}/api/generate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...bearer(STREAMER) },
    body: JSON.stringify({ model: 'llama3.2', prompt: 'long', stream: true }),
    signal: controller.signal,
  })
  stream.body.on('error', () => {})
  await new Promise((resolve) => stream.body.once('data', resolve))
  const busy = await send(b.url, 'GET', '/api/tags', undefined, bearer(STREAMER))
  t.equal(busy.status, 429)
  t.match(busy.json, { error: /may send 1 requests at once/ })
  const admin = new Redis(redis.url)
  t.teardown(() => admin.disconnect())
  const inflightKey = `${prefix}auth:{streamer}:inflight`
  t.equal(await admin.zcard(inflightKey), 1, 'the slot is a member of the in-flight set')
  t.ok((await admin.pttl(inflightKey)) > 0, 'with an expiry')
  controller.abort()
  await fake.waitForClosedEarly(1)
  await until(async () => (await admin.zcard(inflightKey)) === 0)
  t.equal(await tags(b.url, STREAMER), 200, 'released on the other replica too')
  t.ok((await admin.pttl(`${prefix}auth:{app}:rpm:${Math.floor(now / 60_000)}`)) > 0, 'minute counters expire')
  // Closed before Redis goes: a client left open would retry and report the refused connections
  // as ioredis's "Unhandled error event".
  admin.disconnect()

  await redis.kill()
  // Each replica admitted two of the minute's four through Redis; its memory count holds them.
  for (const c of [a, b]) {
    for (let i = 0; i < 2; i++) t.equal(await tags(c.url, APP), 200, 'served from the memory limiter')
    t.equal(await tags(c.url, APP), 429, 'and still limited: never more than rpm per replica')
  }
  t.equal(await tags(a.url, STREAMER), 200)
  t.ok(a.logs.some((l) => l.msg === 'Redis unavailable: rate limits counted per replica in memory' && l.level === 'warn'))
  t.notOk(a.logs.some((l) => l.level === 'error'), 'no error logged')
})
