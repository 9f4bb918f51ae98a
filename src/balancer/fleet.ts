/**
 * The instances behind corral, built from the configuration and matched by name on a reload:
 * one a reload removes is retired (no new request goes there) and closed once the requests it
 * carries ended. It owns the instances (and so their connection pools) and closes them. Health
 * state changes are counted and logged here, then passed on.
 */
import type { Logger } from 'pino'
import type { Config, InstanceConfig } from '../config/config.js'
import { canonicalModel } from '../shared/model-name.js'
import type { HealthStateName } from './health-state.js'
import { Instance, type InstanceRules, type PoolOptions } from './instance.js'

export type HealthChangeListener = (instance: Instance, from: HealthStateName, to: HealthStateName) => void

/** What a reload did to the fleet. */
export interface FleetChange {
  /** New instances (new names, and new urls of existing names). */
  readonly added: readonly Instance[]
  /** Instances taken out of service (draining until their requests end). */
  readonly removed: readonly Instance[]
}

/** Timing averages forget with this time constant (Finagle/Linkerd use 10 s; LLM traffic is sparser). */
const EWMA_DECAY_MS = 30_000

export class Fleet {
  readonly #logger: Logger
  readonly #now: () => number
  /** Called on every health state change of an instance in service, after it is logged. */
  readonly #onHealth: HealthChangeListener
  /** Replaced (never mutated) by a reload, so a loop over it sees one consistent fleet. */
  #instances: readonly Instance[]
  #poolOptions: PoolOptions
  #rules: InstanceRules
  /** Instances a reload removed, until their last request ended and their pool closed. */
  readonly #retiring = new Map<Instance, Promise<void>>()
  readonly #closers = new Map<Instance, () => void>()

  constructor(config: Config, logger: Logger, now: () => number, onHealth: HealthChangeListener) {
    this.#logger = logger
    this.#now = now
    this.#onHealth = onHealth
    this.#poolOptions = poolOptionsOf(config)
    this.#rules = rulesOf(config)
    this.#instances = Object.freeze(config.instances.map((c, i) => this.#newInstance(i, c)))
  }

  /** The instances that take requests now, in configuration order. */
  get instances(): readonly Instance[] {
    return this.#instances
  }

  /** Per instance (in `instances` order): passive ejections. */
  get ejections(): number[] {
    return this.#instances.map((i) => i.ejections)
  }

  /**
   * Applies the instances of a reloaded configuration. Instances are matched by name: a new name
   * is added; a missing one, or one whose url changed, is retired and, for a new url, replaced by
   * a fresh instance; a kept one is updated in place (weight, concurrency cap, health thresholds)
   * and keeps what was learned of it.
   */
  reconfigure(config: Config): FleetChange {
    const before = new Map(this.#instances.map((i) => [i.name, i]))
    const poolChanged = !samePoolOptions(this.#poolOptions, poolOptionsOf(config))
    this.#poolOptions = poolOptionsOf(config)
    this.#rules = rulesOf(config)
    const now = this.#now()
    const added: Instance[] = []
    const removed: Instance[] = []
    const next = config.instances.map((c, index) => {
      const kept = before.get(c.name)
      if (kept !== undefined && kept.url === c.url) {
        before.delete(c.name)
        kept.index = index
        kept.reconfigure(c)
        kept.health.setRules(this.#rules.health)
        kept.penalty.setDecayMs(this.#rules.failureDecayMs, now)
        if (poolChanged) void kept.replacePool(this.#poolOptions)
        return kept
      }
      const fresh = this.#newInstance(index, c)
      added.push(fresh)
      return fresh
    })
    for (const gone of before.values()) {
      removed.push(gone)
      this.#retire(gone)
    }
    this.#instances = Object.freeze(next)
    return { added, removed }
  }

  /** A request on a retired instance ended: its pool closes with its last request. */
  requestEnded(instance: Instance): void {
    if (instance.inFlight === 0) this.#closeRetired(instance)
  }

  /**
   * The digest of `model` as discovered on the instances (`/api/tags`), or undefined when it is
   * not known yet.
   */
  digestOf(model: string): string | undefined {
    const key = canonicalModel(model)
    const instances = this.#instances
    for (let i = 0; i < instances.length; i++) {
      const digest = instances[i]!.models?.get(key)
      if (digest !== undefined) return digest
    }
    return undefined
  }

  /** Instances that take traffic now (healthy or half-open); all of them when none does. */
  available(): readonly Instance[] {
    const now = this.#now()
    const up = this.#instances.filter((i) => {
      const state = i.health.state(now)
      return state === 'healthy' || state === 'half_open'
    })
    return up.length > 0 ? up : this.#instances
  }

  /** Resolves when every instance a reload removed has closed its pool. */
  async retired(): Promise<void> {
    await Promise.all(this.#retiring.values())
  }

  async close(): Promise<void> {
    await Promise.all([...this.#instances, ...this.#retiring.keys()].map((i) => i.close()))
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.#instances, ...this.#retiring.keys()].map((i) => i.destroy()))
  }

  #newInstance(index: number, config: InstanceConfig): Instance {
    // The listener finds the instance through this holder: it does not exist yet when passed.
    const holder: { instance?: Instance } = {}
    const instance = new Instance(index, config, this.#poolOptions, this.#rules, (from, to, reason) => {
      if (holder.instance !== undefined) this.#healthChanged(holder.instance, from, to, reason)
    })
    holder.instance = instance
    return instance
  }

  /** Takes `instance` out of service: no new request; closed once the ones it carries ended. */
  #retire(instance: Instance): void {
    instance.retired = true
    let resolve!: () => void
    this.#retiring.set(instance, new Promise((r) => (resolve = r)))
    this.#closers.set(instance, resolve)
    this.#logger.info({ instance: instance.name, url: instance.url, in_flight: instance.inFlight }, 'instance removed: draining')
    if (instance.inFlight === 0) this.#closeRetired(instance)
  }

  #closeRetired(instance: Instance): void {
    const resolve = this.#closers.get(instance)
    if (resolve === undefined) return
    this.#closers.delete(instance)
    void instance
      .close()
      .catch((err: unknown) => this.#logger.warn({ instance: instance.name, err }, 'instance removed: close failed'))
      .then(() => {
        this.#retiring.delete(instance)
        this.#logger.info({ instance: instance.name, url: instance.url }, 'instance removed: closed')
        resolve()
      })
  }

  #healthChanged(instance: Instance, from: HealthStateName, to: HealthStateName, reason: string): void {
    if (instance.retired) return // removed by a reload: its state no longer matters
    instance.stateChanges++
    if (to === 'ejected') instance.ejections++
    const level = to === 'healthy' ? 'info' : 'warn'
    this.#logger[level]({ instance: instance.name, from, to, reason }, `instance ${to}`)
    this.#onHealth(instance, from, to)
  }
}

function poolOptionsOf(config: Config): PoolOptions {
  return { connectTimeoutMs: config.proxy.connectTimeoutMs, connections: config.proxy.connectionsPerInstance }
}

function samePoolOptions(a: PoolOptions, b: PoolOptions): boolean {
  return a.connectTimeoutMs === b.connectTimeoutMs && a.connections === b.connections
}

function rulesOf(config: Config): InstanceRules {
  return {
    health: { ...config.health, slowStartMs: config.balancer.slowStartMs },
    ewmaDecayMs: EWMA_DECAY_MS,
    failureDecayMs: config.balancer.failureDecayMs,
  }
}
