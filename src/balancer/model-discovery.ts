/**
 * Model discovery: every `health.models_interval`, `/api/tags` (models on disk, with digests) and
 * `/api/ps` (models loaded) on each instance that is not down, and at once for an instance that
 * recovered or whose models were changed through corral. The balancer routes by what it finds;
 * until an instance answers, it is assumed to have every model. Never throws: an instance that
 * fails to answer keeps what was known of it.
 */
import type { Logger } from 'pino'
import type { HealthConfig } from '../config/config.js'
import type { Instance } from './instance.js'
import { Poller } from './poller.js'
import { canonicalModel } from '../shared/model-name.js'

interface ModelEntry {
  name?: unknown
  model?: unknown
  digest?: unknown
}

export class ModelDiscovery {
  /** The instances to ask, read at every round (a reload changes them). */
  readonly #instances: () => readonly Instance[]
  #config: HealthConfig
  readonly #logger: Logger
  readonly #running = new Map<Instance, Promise<void>>()
  readonly #poller: Poller

  constructor(instances: () => readonly Instance[], config: HealthConfig, logger: Logger) {
    this.#instances = instances
    this.#config = config
    this.#logger = logger
    this.#poller = new Poller(() => this.refreshAll(), config.modelsIntervalMs)
  }

  /** Discovers every instance now, then every interval. */
  start(): void {
    this.#poller.start()
  }

  /** Whether `start` was called (and not `close`). */
  get started(): boolean {
    return this.#poller.started
  }

  /** New settings from a reload: a changed interval restarts the timer. */
  reconfigure(config: HealthConfig): void {
    this.#config = config
    this.#poller.setInterval(config.modelsIntervalMs)
  }

  /** Resolves when the first round after `start` is done (every instance answered or failed). */
  firstRound(): Promise<void> {
    return this.#poller.firstRound()
  }

  async refreshAll(): Promise<void> {
    await Promise.all(this.#instances().filter((i) => i.health.state(Date.now()) !== 'unhealthy').map((i) => this.refresh(i)))
  }

  /** Reads one instance's models now (a refresh already running for it is shared). */
  refresh(instance: Instance): Promise<void> {
    let running = this.#running.get(instance)
    if (running === undefined) {
      running = this.#discover(instance).finally(() => this.#running.delete(instance))
      this.#running.set(instance, running)
    }
    return running
  }

  /** Stops polling; waits for refreshes in progress. Idempotent. */
  async close(): Promise<void> {
    await this.#poller.close()
    await Promise.all(this.#running.values())
  }

  async #discover(instance: Instance): Promise<void> {
    if (this.#poller.closed || instance.retired) return
    const [tags, ps] = await Promise.all([this.#get(instance, '/api/tags'), this.#get(instance, '/api/ps')])
    if (this.#poller.closed) return
    if (tags !== undefined) {
      const models = new Map<string, string>()
      for (const entry of tags) {
        const name = typeof entry.name === 'string' ? entry.name : entry.model
        if (typeof name === 'string') models.set(canonicalModel(name), typeof entry.digest === 'string' ? entry.digest : '')
      }
      if (!sameKeys(instance.models, models)) {
        this.#logger.info({ instance: instance.name, models: [...models.keys()] }, 'instance models')
      }
      instance.models = models
    }
    if (ps !== undefined) {
      const loaded = new Set<string>()
      for (const entry of ps) {
        const name = typeof entry.name === 'string' ? entry.name : entry.model
        if (typeof name === 'string') loaded.add(canonicalModel(name))
      }
      instance.loaded = loaded
    }
  }

  /** The `models` array of a discovery answer, or undefined when the instance did not give one. */
  async #get(instance: Instance, path: string): Promise<ModelEntry[] | undefined> {
    const timeoutMs = this.#config.timeoutMs
    try {
      const res = await instance.pool.request({
        method: 'GET',
        path,
        headers: { 'user-agent': 'corral (model discovery)' },
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
      })
      if (res.statusCode !== 200) {
        await res.body.dump()
        this.#logger.debug({ instance: instance.name, path, status: res.statusCode }, 'model discovery failed')
        return undefined
      }
      const body = (await res.body.json()) as { models?: unknown }
      return Array.isArray(body.models) ? (body.models as ModelEntry[]) : undefined
    } catch (err) {
      this.#logger.debug({ instance: instance.name, path, err: (err as Error).message }, 'model discovery failed')
      return undefined
    }
  }
}

function sameKeys(a: ReadonlyMap<string, string> | undefined, b: ReadonlyMap<string, string>): boolean {
  if (a === undefined || a.size !== b.size) return false
  for (const key of b.keys()) if (!a.has(key)) return false
  return true
}
