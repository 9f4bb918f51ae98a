import { Cluster, Redis, type RedisOptions } from 'ioredis'
import type { RedisConfig } from '../config/config.js'

/** Periodic CLUSTER SLOTS, besides the refresh after a failed command: one small command a second. */
const SLOTS_REFRESH_MS = 1000

/**
 * An ioredis client for the configured mode (single node, Sentinel or Cluster), set up to fail
 * fast: a command timeout, no offline queue (commands fail at once while disconnected instead of
 * piling up), no per-request retries, and a reconnect loop in the background.
 */
export function createRedisClient(config: RedisConfig): Redis | Cluster {
  const common: RedisOptions = {
    commandTimeout: config.commandTimeoutMs,
    connectTimeout: Math.max(1000, config.commandTimeoutMs),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    enableAutoPipelining: true,
    retryStrategy: (times) => Math.min(times * 100, 2000),
  }
  const secured = {
    ...(config.password !== undefined ? { password: config.password } : {}),
    ...(config.tls ? { tls: {} } : {}),
  }
  if (config.cluster !== undefined) {
    return new Cluster(
      config.cluster.map((u) => {
        const url = new URL(u)
        return { host: url.hostname, port: Number(url.port || 6379) }
      }),
      {
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        clusterRetryStrategy: (times) => Math.min(times * 100, 2000),
        // Fail fast while a master is down: by default ioredis re-sends a command whose node
        // closed or whose slots are CLUSTERDOWN every 100 ms up to 16 times, holding a request
        // for over a second. With no delay the command fails at once (the request is a miss),
        // and the store asks for a new slot map (`RedisStore` calls refreshSlotsCache on a
        // failure), so the promoted replica is found as soon as the failover is done. MOVED
        // and ASK redirections (a resharding, a failover already known to the node) still
        // follow at once.
        retryDelayOnFailover: 0,
        retryDelayOnClusterDown: 0,
        retryDelayOnTryAgain: 0,
        slotsRefreshTimeout: Math.max(1000, config.commandTimeoutMs),
        slotsRefreshInterval: SLOTS_REFRESH_MS,
        redisOptions: { ...common, ...secured, ...urlAuth(config.cluster[0]!) },
      },
    )
  }
  if (config.sentinels !== undefined) {
    return new Redis({ ...common, ...secured, sentinels: config.sentinels.map((s) => ({ ...s })), name: config.name! })
  }
  return new Redis(config.url!, common)
}

/** Credentials and TLS carried by a cluster seed URL. */
function urlAuth(u: string): RedisOptions {
  const url = new URL(u)
  return {
    ...(url.username !== '' ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password !== '' ? { password: decodeURIComponent(url.password) } : {}),
    ...(url.protocol === 'rediss:' ? { tls: {} } : {}),
  }
}
