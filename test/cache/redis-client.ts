/** The ioredis client for each configured mode, built to fail fast (no network needed). */
import t from 'tap'
import { Cluster, Redis } from 'ioredis'
import { createRedisClient } from '../../src/redis/redis-client.js'
import { configFromObject } from '../../src/config/load-config.js'

const build = (redis: Record<string, unknown>): Redis | Cluster => {
  const client = createRedisClient(configFromObject({ redis }).config.redis!)
  client.on('error', () => {}) // nothing listens on these addresses
  t.teardown(() => client.disconnect())
  return client
}

t.test('single node: a command timeout, no offline queue, no per-request retries', async (t) => {
  const client = build({ url: 'redis://:pw@127.0.0.1:1/2', command_timeout: '40ms' }) as Redis
  t.ok(client instanceof Redis)
  t.match(client.options, { host: '127.0.0.1', port: 1, db: 2, password: 'pw', commandTimeout: 40, enableOfflineQueue: false, maxRetriesPerRequest: 0 })
  await t.rejects(client.get('k'), /enableOfflineQueue/, 'a command while disconnected fails at once')
})

t.test('sentinel: the sentinels, the master name, password and TLS', async (t) => {
  const client = build({ sentinels: ['127.0.0.1:1', '127.0.0.1:2'], name: 'mymaster', password: 'pw', tls: true }) as Redis
  t.ok(client instanceof Redis)
  t.match(client.options, { sentinels: [{ host: '127.0.0.1', port: 1 }, { host: '127.0.0.1', port: 2 }], name: 'mymaster', password: 'pw', tls: {}, enableOfflineQueue: false })
})

t.test('cluster: seed nodes, credentials from the URL', async (t) => {
  const client = build({ cluster: ['redis://:pw@127.0.0.1:1', 'redis://127.0.0.1:2'], command_timeout: '30ms' }) as Cluster
  t.ok(client instanceof Cluster)
  t.match(client.options, { retryDelayOnFailover: 0, retryDelayOnClusterDown: 0, retryDelayOnTryAgain: 0, slotsRefreshInterval: 1000 }, 'a dead master fails commands at once')
  t.match(client.options, { enableOfflineQueue: false, redisOptions: { password: 'pw', commandTimeout: 30, enableOfflineQueue: false } })
})
