/**
 * The set of instances and how each request attempt gets one: filters first (not tried, has the
 * model, healthy, under its concurrency cap), then the selection policy among what is left. When
 * every candidate is at its cap the request waits in the admission queue; when no candidate is
 * healthy corral does not refuse, it tries them in round-robin order. Outcomes of attempts come
 * back through `release` and feed the timings, the failure penalty and passive health.
 *
 * It owns the instances (and so their connection pools) and closes them.
 */
import type { Logger } from 'pino'
import type { Config, InstanceConfig } from '../config/config.js'
import { queueFull, queueTimeout, type InstanceErrorKind } from '../shared/errors.js'
import { ClassWaits } from './class-waits.js'
import { FairQueue, type Waiter } from './fair-queue.js'
import type { PriorityClass } from '../config/priority-class.js'
import type { HealthStateName } from './health-state.js'
import { Instance, type InstanceRules, type PoolOptions, type WorkKind } from './instance.js'
import { canonicalModel } from '../shared/model-name.js'
import { policies } from './policies.js'
import { RoundRobinPolicy } from './round-robin.js'
import { ELIGIBLE, FULL, type PickRequest, type SelectionPolicy } from './selection-policy.js'

/** A request as the balancer sees it (the proxy's Exchange is one). */
export interface BalancedRequest extends PickRequest {
  /** Session key for affinity, if any. */
  readonly affinityKey: string | undefined
  /** Set when no candidate was healthy and the request went round-robin over all of them. */
  fallback: boolean
  /** Cancels what the request is waiting for; the balancer sets it while the request is queued. */
  upstream: { cancel(): void } | undefined
  /** The slot cell (Instance.expectedEnds) the request holds while in flight; -1 when none. */
  slot: number
  /** Requests of its kind in flight at its instance when it was sent, itself included (0 before). */
  level: number
  /** Its priority class; undefined: interactive. */
  readonly priority?: PriorityClass | undefined
  /** Who it is for fair shares between keys (the key's name); undefined: nobody in particular. */
  readonly tenant?: string | undefined
  /** The tenant's weight in its class; undefined: 1. */
  readonly shareWeight?: number | undefined
}

/** Called when a request gets its slot: its class, how long it waited in ms, and whether it queued. */
export type QueueWaitListener = (priority: PriorityClass, waitMs: number, queued: boolean) => void

/** How one attempt ended, as the balancer needs it. */
export interface AttemptReport {
  readonly outcome: 'success' | 'failure' | 'neutral'
  /** Why it failed (outcome failure). */
  readonly failureReason: string | undefined
  /** Its kind (outcome failure). */
  readonly failureKind: InstanceErrorKind | undefined
  /** The instance answered 200: timings are meaningful. */
  readonly ok: boolean
  /** The answer was streamed (its headers came before the work was done). */
  readonly streamed: boolean
  /** ms from sending to the response headers; -1 if none came. */
  readonly ttfbMs: number
  /** ms from sending to the end of the response. */
  readonly totalMs: number
  /** Ollama's eval_count and eval_duration (as ms) from the final chunk; 0 when absent. */
  readonly evalCount: number
  readonly evalMs: number
}

export type HealthChangeListener = (instance: Instance, from: HealthStateName, to: HealthStateName) => void

/** Called once for every attempt that counted as a failure against `instance`. */
export type AttemptFailureListener = (instance: Instance, kind: InstanceErrorKind) => void

export interface BalancerDeps {
  logger: Logger
  /** Wall clock in ms; injected for tests. */
  now?: () => number
}

/** What a reload did to the fleet. */
export interface FleetChange {
  /** New instances (new names, and new urls of existing names). */
  readonly added: readonly Instance[]
  /** Instances taken out of service (draining until their requests end). */
  readonly removed: readonly Instance[]
}

/** Timing averages forget with this time constant (Finagle/Linkerd use 10 s; LLM traffic is sparser). */
const EWMA_DECAY_MS = 30_000
/** Answer length assumed before any has been seen, in tokens. */
const DEFAULT_EXPECTED_TOKENS = 128
const TOKENS_ALPHA = 0.05
/** The bulk reserve is held while an interactive request came this recently (ms); else bulk uses every slot. */
const RESERVE_HOLD_MS = 10_000
/** Sessions remembered for affinity. */
const AFFINITY_ENTRIES = 10_000

export class Balancer {
  /** Attempts dispatched and failed, over all instances. */
  requests = 0
  errors = 0
  #config: Config['balancer']
  readonly #logger: Logger
  readonly #now: () => number
  /** Replaced (never mutated) by a reload, so a loop over it sees one consistent fleet. */
  #instances: readonly Instance[]
  #policy: SelectionPolicy
  #eligible: Uint8Array
  #fallback: RoundRobinPolicy
  #poolOptions: PoolOptions
  #rules: InstanceRules
  readonly #queue = new FairQueue<BalancedRequest>()
  /** Waits per priority class, for stats. */
  readonly waits = new ClassWaits()
  /** When the last interactive model request arrived (-Infinity: never); the reserve is held after one. */
  #interactiveAt = -Infinity
  #waitListeners: QueueWaitListener[] = []
  readonly #affinity = new Map<string, Instance>()
  /** Instances a reload removed, until their last request ended and their pool closed. */
  readonly #retiring = new Map<Instance, Promise<void>>()
  readonly #closers = new Map<Instance, () => void>()
  #expectedTokens = DEFAULT_EXPECTED_TOKENS
  #healthListeners: HealthChangeListener[] = []
  #failureListeners: AttemptFailureListener[] = []

  constructor(config: Config, deps: BalancerDeps) {
    this.#config = config.balancer
    this.#logger = deps.logger
    this.#now = deps.now ?? Date.now
    this.#poolOptions = poolOptionsOf(config)
    this.#rules = rulesOf(config)
    this.#instances = Object.freeze(config.instances.map((c, i) => this.#newInstance(i, c)))
    this.#eligible = new Uint8Array(this.#instances.length)
    this.#fallback = new RoundRobinPolicy(this.#instances.length)
    this.#policy = this.#newPolicy()
  }

  /** The instances that take requests now, in configuration order. */
  get instances(): readonly Instance[] {
    return this.#instances
  }

  /** The selection policy now (a reload that changes the fleet or the policy builds a new one). */
  get policy(): SelectionPolicy {
    return this.#policy
  }

  /** Per instance (in `instances` order): passive ejections. */
  get ejections(): number[] {
    return this.#instances.map((i) => i.ejections)
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
    const before = new Map(this.#instances.map((i) => [i.name, i]))
    const poolChanged = !samePoolOptions(this.#poolOptions, poolOptionsOf(config))
    const policyChanged = config.balancer.policy !== this.#config.policy || config.balancer.coldModelPenaltyMs !== this.#config.coldModelPenaltyMs
    this.#config = config.balancer
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
    const fleetChanged = added.length > 0 || removed.length > 0
    this.#instances = Object.freeze(next)
    if (fleetChanged) {
      // Per-instance state is indexed by position, which just changed: start it afresh.
      this.#eligible = new Uint8Array(next.length)
      this.#fallback = new RoundRobinPolicy(next.length)
    }
    if (fleetChanged || policyChanged) this.#policy = this.#newPolicy()
    for (const [key, instance] of this.#affinity) if (instance.retired) this.#affinity.delete(key)
    if (this.#queue.length > 0) this.#drain()
    return { added, removed }
  }

  /** The priority settings now (a reload replaces them). */
  get priorityRules(): Config['balancer']['priority'] {
    return this.#config.priority
  }

  /** Requests waiting for a free slot. */
  get queueDepth(): number {
    return this.#queue.length
  }

  /**
   * The instance for the next attempt of `request`, its slot already taken (give it back with
   * `release`); undefined when no candidate is left (all tried). May wait in the queue; rejects
   * with a 503 CorralError when the queue is full or the wait times out.
   */
  acquire(request: BalancedRequest, tried: ReadonlySet<Instance> | undefined): Instance | undefined | Promise<Instance | undefined> {
    const now = this.#now()
    const bulk = request.priority === 'bulk'
    if (!bulk && request.work !== undefined) this.#interactiveAt = now
    const found = this.#mark(request, tried, now, bulk && this.#reserveHeld(now))
    if (found === 'none') return undefined
    if (found === 'free') {
      const placed = this.#place(request, now, this.#queue.length)
      if (placed !== 'wait') {
        this.#recordWait(request, 0, false)
        return this.#take(request, placed, now)
      }
    }
    const { maxQueue } = this.#config
    // A quarter of the queue is kept for interactive requests: a flood of batches cannot make a
    // user's query bounce off a full queue.
    const limit = bulk ? maxQueue - Math.floor(maxQueue / 4) : maxQueue
    if (this.#queue.length >= limit) throw queueFull(maxQueue)
    return this.#wait(request, tried, now)
  }

  /** Requests waiting in the queue as `priority` now. */
  queuedOf(priority: PriorityClass): number {
    return this.#queue.lengthOf(priority)
  }

  /** Requests waiting per tenant (key name) and class, for stats; bounded by the queue's length. */
  queuedByTenant(): Map<string, Record<PriorityClass, number>> {
    const out = new Map<string, Record<PriorityClass, number>>()
    for (const w of this.#queue.snapshot()) {
      let counts = out.get(w.tenant)
      if (counts === undefined) out.set(w.tenant, (counts = { interactive: 0, bulk: 0 }))
      counts[w.priority]++
    }
    return out
  }

  /** Called whenever a request gets its slot (metrics observe the queue wait by class). */
  onQueueWait(listener: QueueWaitListener): void {
    this.#waitListeners.push(listener)
  }

  /** Gives back the slot taken by `acquire`, with how the attempt went. */
  release(instance: Instance, request: BalancedRequest, report: AttemptReport): void {
    instance.inFlight--
    if (request.work !== undefined) instance.inFlightOf[request.work]--
    if (request.slot >= 0) {
      instance.expectedEnds[request.slot] = 0
      request.slot = -1
    }
    if (instance.retired) {
      // Removed by a reload: nothing to learn any more; its pool closes with its last request.
      if (instance.inFlight === 0) this.#closeRetired(instance)
      if (this.#queue.length > 0) this.#drain()
      return
    }
    const now = this.#now()
    if (report.outcome === 'success') {
      instance.health.onSuccess(now)
      if (report.ok) this.#learn(instance, request, report, now)
    } else if (report.outcome === 'failure') {
      this.errors++
      instance.penalty.add(this.#config.failurePenaltyMs, now)
      instance.health.onFailure(now, report.failureReason ?? 'failed')
      const kind = report.failureKind ?? 'other'
      for (const listener of this.#failureListeners) listener(instance, kind)
    } else {
      instance.health.onNeutral()
    }
    if (this.#queue.length > 0) this.#drain()
  }

  /** Session key for affinity from a request's headers and body, when affinity is configured. */
  affinityKeyOf(headers: Readonly<Record<string, string | string[] | undefined>>, json: Record<string, unknown> | undefined): string | undefined {
    const { header, prefixBytes } = this.#config.affinity
    if (header !== undefined) {
      const value = headers[header]
      if (typeof value === 'string' && value !== '') return `h:${value}`
    }
    if (prefixBytes > 0 && json !== undefined) {
      const source = json.messages ?? json.prompt
      if (source !== undefined) return `p:${fnv1a(JSON.stringify(source).slice(0, prefixBytes))}`
    }
    return undefined
  }

  /**
   * The digest of `model` as discovered on the instances (`/api/tags`), or undefined when it is
   * not known yet. Cache keys include it, so a re-pulled model never serves stale answers.
   */
  digestOf(model: string): string | undefined {
    const key = canonicalModel(model)
    const { instances } = this
    for (let i = 0; i < instances.length; i++) {
      const digest = instances[i]!.models?.get(key)
      if (digest !== undefined) return digest
    }
    return undefined
  }

  /** Instances that take traffic now (healthy or half-open); all of them when none does. */
  available(): readonly Instance[] {
    const now = this.#now()
    const up = this.instances.filter((i) => {
      const state = i.health.state(now)
      return state === 'healthy' || state === 'half_open'
    })
    return up.length > 0 ? up : this.instances
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
    return this.#queue.countFor((w) => !w.tried?.has(instance) && (w.request.modelKey === undefined || instance.mayHave(w.request.modelKey)))
  }

  /** The ms-per-token and time-to-first-byte estimates the policy uses. */
  get expectedTokens(): number {
    return this.#expectedTokens
  }

  /** Resolves when every instance a reload removed has closed its pool. */
  async retired(): Promise<void> {
    await Promise.all(this.#retiring.values())
  }

  async close(): Promise<void> {
    this.#failQueue()
    await Promise.all([...this.#instances, ...this.#retiring.keys()].map((i) => i.close()))
  }

  async destroy(): Promise<void> {
    this.#failQueue()
    await Promise.all([...this.#instances, ...this.#retiring.keys()].map((i) => i.destroy()))
  }

  #newInstance(index: number, config: InstanceConfig): Instance {
    // The listener finds the instance through this holder: it does not exist yet when passed.
    const holder: { instance?: Instance } = {}
    const instance = new Instance(index, config, this.#poolOptions, this.#rules, (from, to, reason) => {
      if (holder.instance !== undefined) this.#onHealth(holder.instance, from, to, reason)
    })
    holder.instance = instance
    return instance
  }

  #newPolicy(): SelectionPolicy {
    return policies[this.#config.policy]({
      instanceCount: this.#instances.length,
      coldModelPenaltyMs: this.#config.coldModelPenaltyMs,
      expectedTokens: () => this.#expectedTokens,
    })
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

  /**
   * Marks in `#eligible` the instances this attempt may use now. 'free': at least one; 'full':
   * candidates exist but all are at their cap; 'none': no candidate at all.
   */
  #mark(request: BalancedRequest, tried: ReadonlySet<Instance> | undefined, now: number, reserve: boolean): 'free' | 'full' | 'none' {
    const { instances } = this
    const eligible = this.#eligible
    const model = request.modelKey
    // A model no instance has still goes somewhere, so the client gets Ollama's own 404.
    let filterModel = false
    if (model !== undefined) {
      for (let i = 0; i < instances.length; i++) {
        if (instances[i]!.mayHave(model)) {
          filterModel = true
          break
        }
      }
    }
    const capped = request.work !== undefined
    let candidates = 0
    let admitted = 0
    let free = 0
    for (let i = 0; i < instances.length; i++) {
      const instance = instances[i]!
      eligible[i] = 0
      if ((tried !== undefined && tried.has(instance)) || (filterModel && !instance.mayHave(model!))) continue
      eligible[i] = 2 // a candidate, not (yet) admitted
      candidates++
      if (!instance.health.admits(now)) continue
      admitted++
      if (capped && (reserve ? this.#fullForBulk(instance, request.work) : instance.fullFor(request.work))) {
        eligible[i] = FULL
        continue
      }
      eligible[i] = ELIGIBLE
      free++
    }
    if (candidates === 0) return 'none'
    if (admitted === 0) {
      // No candidate is healthy: do not refuse, try them all in turn.
      request.fallback = true
      for (let i = 0; i < instances.length; i++) {
        if (eligible[i] === 0) continue
        eligible[i] = capped && instances[i]!.fullFor(request.work) ? 0 : ELIGIBLE
        if (eligible[i] === ELIGIBLE) free++
      }
    }
    return free > 0 ? 'free' : 'full'
  }

  /**
   * Chooses among the marked instances (at least one is free): an instance, or 'wait' when the
   * policy predicts the request finishes sooner by waiting for a full one.
   */
  #place(request: BalancedRequest, now: number, queueAhead: number): Instance | 'wait' {
    if (request.fallback) return this.#fallback.pick(this.instances, this.#eligible)!
    const { policy } = this
    // Waiting for a faster instance pays only while the queue is shorter than the slots it waits
    // for; beyond that (overload) every free slot must work, or the backlog grows faster.
    const placed =
      policy.place !== undefined && request.work !== undefined && this.#queue.length < this.#fullSlots(request.work)
        ? policy.place(this.instances, this.#eligible, request, now, queueAhead)!
        : policy.pick(this.instances, this.#eligible, request, now)!
    if (placed === 'wait' || request.affinityKey === undefined) return placed
    return this.#sticky(request, placed, now)
  }

  /** Whether bulk requests leave the reserve free now: an interactive one came recently. */
  #reserveHeld(now: number): boolean {
    return this.#config.priority.bulkReserve > 0 && now - this.#interactiveAt < RESERVE_HOLD_MS
  }

  /** True when `instance` carries as many requests of `work` as bulk may use there (its slots less the reserve, at least one). */
  #fullForBulk(instance: Instance, work: WorkKind): boolean {
    const slots = instance.slots(work)
    const reserved = Math.min(Math.floor(slots * this.#config.priority.bulkReserve), slots - 1)
    return instance.inFlightOf[work] >= slots - reserved
  }

  #recordWait(request: BalancedRequest, waitMs: number, queued: boolean): void {
    if (request.work === undefined) return
    const priority = request.priority ?? 'interactive'
    this.waits.record(priority, waitMs, queued)
    for (const listener of this.#waitListeners) listener(priority, waitMs, queued)
  }

  /** Slots for `work` of the instances marked FULL by the last `#mark`. */
  #fullSlots(work: WorkKind): number {
    let slots = 0
    for (let i = 0; i < this.instances.length; i++) if (this.#eligible[i] === FULL) slots += this.instances[i]!.slots(work)
    return slots
  }

  /** Takes a slot on `instance` for `request`. */
  #take(request: BalancedRequest, instance: Instance, now: number): Instance {
    const { policy } = this
    if (request.work !== undefined && policy.expectedServiceMs !== undefined) {
      request.slot = instance.holdSlot(now + policy.expectedServiceMs(instance, request, this.instances))
    }
    instance.inFlight++
    if (request.work !== undefined) request.level = ++instance.inFlightOf[request.work]
    instance.requests++
    instance.health.onDispatch()
    this.requests++
    return instance
  }

  /** The session's previous instance instead of `best`, while its score is within the tolerance. */
  #sticky(request: BalancedRequest, best: Instance, now: number): Instance {
    const previous = this.#affinity.get(request.affinityKey!)
    if (previous === undefined || previous === best || previous.retired || this.#eligible[previous.index] !== 1) return best
    const { policy, instances } = this
    if (policy.score === undefined) return previous
    const tolerance = this.#config.affinity.tolerance
    return policy.score(previous, request, now, instances) <= tolerance * policy.score(best, request, now, instances) ? previous : best
  }

  #wait(request: BalancedRequest, tried: ReadonlySet<Instance> | undefined, now: number): Promise<Instance | undefined> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter<BalancedRequest> = {
        request,
        tried,
        since: now,
        priority: request.priority ?? 'interactive',
        tenant: request.tenant ?? '',
        weight: request.shareWeight ?? 1,
        promoted: false,
        tag: 0,
        seq: 0,
        timer: undefined,
        settle: (instance) => {
          request.upstream = undefined
          resolve(instance)
        },
        fail: (err) => {
          request.upstream = undefined
          reject(err)
        },
      }
      waiter.timer = setTimeout(() => {
        if (this.#queue.remove(waiter)) waiter.fail(queueTimeout(this.#now() - waiter.since))
      }, this.#config.queueTimeoutMs)
      request.upstream = {
        cancel: () => {
          if (this.#queue.remove(waiter)) waiter.settle(undefined)
        },
      }
      this.#queue.push(waiter)
    })
  }

  /**
   * Hands free slots to waiting requests in the queue's order (interactive first, fair between
   * keys); a waiter no instance can serve yet is passed over, and bulk leaves the reserve free.
   */
  #drain(): void {
    const now = this.#now()
    this.#queue.promote(now - this.#config.priority.bulkMaxWaitMs)
    const reserve = this.#reserveHeld(now)
    let ahead = 0
    for (const waiter of this.#queue.snapshot()) {
      const found = this.#mark(waiter.request, waiter.tried, now, reserve && waiter.priority === 'bulk' && !waiter.promoted)
      if (found === 'none') {
        this.#queue.remove(waiter)
        waiter.settle(undefined)
        continue
      }
      const placed = found === 'free' ? this.#place(waiter.request, now, ahead) : 'wait'
      if (placed === 'wait') {
        ahead++
        continue
      }
      this.#queue.serve(waiter)
      this.#recordWait(waiter.request, now - waiter.since, true)
      waiter.settle(this.#take(waiter.request, placed, now))
      if (!this.instances.some((i) => !i.saturated)) break
    }
  }

  #failQueue(): void {
    for (const waiter of this.#queue.snapshot()) {
      this.#queue.remove(waiter)
      waiter.settle(undefined)
    }
  }

  /** Feeds a successful answer's timings into the instance's averages. */
  #learn(instance: Instance, request: BalancedRequest, report: AttemptReport, now: number): void {
    const { work, modelKey } = request
    if (modelKey !== undefined && work !== undefined) instance.loaded?.add(modelKey)
    if (request.affinityKey !== undefined) {
      this.#affinity.delete(request.affinityKey)
      this.#affinity.set(request.affinityKey, instance)
      if (this.#affinity.size > AFFINITY_ENTRIES) this.#affinity.delete(this.#affinity.keys().next().value!)
    }
    if (work === undefined) return
    const timing = instance.timing[work]
    const limit = instance.concurrency[work]
    // Time spent queueing inside the instance is left out of its timings: the score counts the
    // requests in flight against the slots itself, and a peak of queueing would stick.
    if (work === 'generation' && report.evalCount > 0) {
      const ttfb = Math.max(0, report.totalMs - report.evalMs)
      const queuedMs = limit.update(request.level, ttfb, report.evalMs)
      timing.msPerToken.update(report.evalMs / report.evalCount, now)
      timing.ttfbMs.update(ttfb - queuedMs, now)
      this.#expectedTokens += TOKENS_ALPHA * (report.evalCount - this.#expectedTokens)
    } else if (report.ttfbMs >= 0 && (work === 'embedding' || report.streamed)) {
      // An embedding's whole duration waits for a slot; a stream's headers come with its first token.
      const queuedMs =
        work === 'embedding'
          ? limit.update(request.level, report.totalMs, 0)
          : limit.update(request.level, report.ttfbMs, Math.max(0, report.totalMs - report.ttfbMs))
      timing.ttfbMs.update(report.ttfbMs - queuedMs, now)
    }
  }

  #onHealth(instance: Instance, from: HealthStateName, to: HealthStateName, reason: string): void {
    if (instance.retired) return // removed by a reload: its state no longer matters
    instance.stateChanges++
    if (to === 'ejected') instance.ejections++
    const level = to === 'healthy' ? 'info' : 'warn'
    this.#logger[level]({ instance: instance.name, from, to, reason }, `instance ${to}`)
    for (const listener of this.#healthListeners) listener(instance, from, to)
    if (to === 'healthy' || to === 'half_open') this.#drain()
  }
}

/** 32-bit FNV-1a of a string, as 8 hex digits: a cheap, stable session key. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash >>> 0).toString(16).padStart(8, '0')
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
