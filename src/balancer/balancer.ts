/**
 * The balancer: what the proxy, the server and the stats see of the instances. It joins four
 * parts, one concept each: the fleet (fleet.ts: the instances, reloads, retiring them), admission
 * (admission.ts: filters, the selection policy, the queue), session affinity (affinity.ts) and
 * what answers teach (attempt-timings.ts). Outcomes of attempts come back through `release` and
 * feed the timings, the failure penalty and passive health.
 */
import type { Logger } from 'pino'
import type { Config } from '../config/config.js'
import type { PriorityClass } from '../config/priority-class.js'
import type { InstanceErrorKind } from '../shared/errors.js'
import { Admission, type QueueWaitListener } from './admission.js'
import { Affinity } from './affinity.js'
import { AttemptTimings } from './attempt-timings.js'
import type { AttemptReport, BalancedRequest } from './balanced-request.js'
import type { ClassWaits } from './class-waits.js'
import { Fleet, type FleetChange, type HealthChangeListener } from './fleet.js'
import type { HealthStateName } from './health-state.js'
import type { Instance, WorkKind } from './instance.js'
import { policies } from './policies.js'
import type { SelectionPolicy } from './selection-policy.js'

export type { QueueWaitListener } from './admission.js'
export type { AttemptReport, BalancedRequest } from './balanced-request.js'
export type { FleetChange, HealthChangeListener } from './fleet.js'

/** Called once for every attempt that counted as a failure against `instance`. */
export type AttemptFailureListener = (instance: Instance, kind: InstanceErrorKind) => void

export interface BalancerDeps {
  logger: Logger
  /** Wall clock in ms; injected for tests. */
  now?: () => number
}

export class Balancer {
  /** Attempts failed, over all instances. */
  errors = 0
  /** Waits per priority class, for stats. */
  readonly waits: ClassWaits
  #config: Config['balancer']
  readonly #now: () => number
  readonly #fleet: Fleet
  readonly #affinity = new Affinity()
  readonly #timings = new AttemptTimings()
  readonly #admission: Admission
  #policy: SelectionPolicy
  #healthListeners: HealthChangeListener[] = []
  #failureListeners: AttemptFailureListener[] = []

  constructor(config: Config, deps: BalancerDeps) {
    this.#config = config.balancer
    this.#now = deps.now ?? Date.now
    this.#fleet = new Fleet(config, deps.logger, this.#now, (instance, from, to) => this.#healthChanged(instance, from, to))
    this.#admission = new Admission(
      { instances: () => this.#fleet.instances, policy: () => this.#policy, config: () => this.#config, now: this.#now },
      this.#affinity,
    )
    this.waits = this.#admission.waits
    this.#policy = this.#newPolicy()
  }

  /** Attempts dispatched, over all instances. */
  get requests(): number {
    return this.#admission.dispatched
  }

  /** The instances that take requests now, in configuration order. */
  get instances(): readonly Instance[] {
    return this.#fleet.instances
  }

  /** The selection policy now (a reload that changes the fleet or the policy builds a new one). */
  get policy(): SelectionPolicy {
    return this.#policy
  }

  /** Per instance (in `instances` order): passive ejections. */
  get ejections(): number[] {
    return this.#fleet.ejections
  }

  /**
   * Applies a reloaded configuration at once (synchronously, so no request sees half of it).
   * Instances are matched by name: a new name is added; a missing one, or one whose url changed,
   * is retired (no new request goes there; its pool closes once the requests it carries ended)
   * and, for a new url, replaced by a fresh instance; a kept one is updated in place (weight,
   * concurrency cap, health thresholds) and keeps what was learned of it. Requests waiting in the
   * queue are placed again over the new fleet.
   */
  reconfigure(config: Config): FleetChange {
    const policyChanged = config.balancer.policy !== this.#config.policy || config.balancer.coldModelPenaltyMs !== this.#config.coldModelPenaltyMs
    this.#config = config.balancer
    const change = this.#fleet.reconfigure(config)
    const fleetChanged = change.added.length > 0 || change.removed.length > 0
    if (fleetChanged) this.#admission.resize(this.#fleet.instances.length)
    if (fleetChanged || policyChanged) this.#policy = this.#newPolicy()
    this.#affinity.forgetRetired()
    if (this.#admission.queueDepth > 0) this.#admission.drain()
    return change
  }

  /** The priority settings now (a reload replaces them). */
  get priorityRules(): Config['balancer']['priority'] {
    return this.#config.priority
  }

  /** Whether an interactive model request came in the last 10 s (bulk leaves the reserve free, batches go in parts). */
  interactiveRecently(): boolean {
    return this.#admission.interactiveRecently()
  }

  /** Requests waiting for a free slot. */
  get queueDepth(): number {
    return this.#admission.queueDepth
  }

  /**
   * The instance for the next attempt of `request`, its slot already taken (give it back with
   * `release`); undefined when no candidate is left (all tried). May wait in the queue; rejects
   * with a 503 CorralError when the queue is full or the wait times out.
   */
  acquire(request: BalancedRequest, tried: ReadonlySet<Instance> | undefined): Instance | undefined | Promise<Instance | undefined> {
    return this.#admission.acquire(request, tried)
  }

  /** Requests waiting in the queue as `priority` now. */
  queuedOf(priority: PriorityClass): number {
    return this.#admission.queuedOf(priority)
  }

  /** Requests waiting per tenant (key name) and class, for stats; bounded by the queue's length. */
  queuedByTenant(): Map<string, Record<PriorityClass, number>> {
    return this.#admission.queuedByTenant()
  }

  /** Called whenever a request gets its slot (metrics observe the queue wait by class). */
  onQueueWait(listener: QueueWaitListener): void {
    this.#admission.onQueueWait(listener)
  }

  /**
   * Takes a slot on `instance` itself for work that must reach it whatever its load (one part of a
   * model list or a pull sent to every instance): no selection, no queue. Give it back with
   * `release`, so in-flight counts and passive health see the part as any other request.
   */
  occupy(instance: Instance, request: BalancedRequest): void {
    this.#admission.occupy(request, instance)
  }

  /** Gives back the slot taken by `acquire`, with how the attempt went. */
  release(instance: Instance, request: BalancedRequest, report: AttemptReport): void {
    this.#admission.release(instance, request)
    if (instance.retired) {
      // Removed by a reload: nothing to learn any more; its pool closes with its last request.
      this.#fleet.requestEnded(instance)
      if (this.#admission.queueDepth > 0) this.#admission.drain()
      return
    }
    const now = this.#now()
    if (report.outcome === 'success') {
      instance.health.onSuccess(now)
      if (report.ok) {
        if (request.affinityKey !== undefined) this.#affinity.remember(request.affinityKey, instance)
        this.#timings.record(instance, request, report, now)
      }
    } else if (report.outcome === 'failure') {
      this.errors++
      instance.penalty.add(this.#config.failurePenaltyMs, now)
      instance.health.onFailure(now, report.failureReason ?? 'failed')
      const kind = report.failureKind ?? 'other'
      for (const listener of this.#failureListeners) listener(instance, kind)
    } else {
      instance.health.onNeutral()
    }
    if (this.#admission.queueDepth > 0) this.#admission.drain()
  }

  /** Session key for affinity from a request's headers and body, when affinity is configured. */
  affinityKeyOf(headers: Readonly<Record<string, string | string[] | undefined>>, json: Record<string, unknown> | undefined): string | undefined {
    return this.#affinity.keyOf(this.#config.affinity, headers, json)
  }

  /**
   * The digest of `model` as discovered on the instances (`/api/tags`), or undefined when it is
   * not known yet. Cache keys include it, so a re-pulled model never serves stale answers.
   */
  digestOf(model: string): string | undefined {
    return this.#fleet.digestOf(model)
  }

  /** Instances that take traffic now (healthy or half-open); all of them when none does. */
  available(): readonly Instance[] {
    return this.#fleet.available()
  }

  /** Called on every health state change of an instance (after it is logged). */
  onHealthChange(listener: HealthChangeListener): void {
    this.#healthListeners.push(listener)
  }

  /** Called on every attempt released as a failure (metrics count them by kind). */
  onAttemptFailure(listener: AttemptFailureListener): void {
    this.#failureListeners.push(listener)
  }

  /** Predicted finish time of a generation on `instance` (policies that score only), for stats. */
  scoreOf(instance: Instance, work: WorkKind = 'generation'): number | undefined {
    return this.policy.score?.(instance, { work, modelKey: undefined, maxTokens: undefined }, this.#now(), this.instances)
  }

  /** Requests in the queue that `instance` could serve. */
  queuedFor(instance: Instance): number {
    return this.#admission.queuedFor(instance)
  }

  /** Expected tokens of a generated answer, learned from Ollama's eval_count (the load-score policy uses it). */
  get expectedTokens(): number {
    return this.#timings.expectedTokens
  }

  /** Resolves when every instance a reload removed has closed its pool. */
  async retired(): Promise<void> {
    await this.#fleet.retired()
  }

  async close(): Promise<void> {
    this.#admission.failQueue()
    await this.#fleet.close()
  }

  async destroy(): Promise<void> {
    this.#admission.failQueue()
    await this.#fleet.destroy()
  }

  #newPolicy(): SelectionPolicy {
    return policies[this.#config.policy]({
      instanceCount: this.#fleet.instances.length,
      coldModelPenaltyMs: this.#config.coldModelPenaltyMs,
      expectedTokens: () => this.#timings.expectedTokens,
    })
  }

  /** After the fleet counted and logged a health change: tell the listeners, and a recovered instance takes waiters. */
  #healthChanged(instance: Instance, from: HealthStateName, to: HealthStateName): void {
    for (const listener of this.#healthListeners) listener(instance, from, to)
    if (to === 'healthy' || to === 'half_open') this.#admission.drain()
  }
}
