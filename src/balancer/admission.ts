/**
 * How each request attempt gets an instance slot: filters first (not tried, has the model,
 * healthy, under its concurrency cap), then the selection policy among what is left, then session
 * affinity. When every candidate is at its cap the request waits in the queue (fair-queue.ts:
 * interactive first, fair shares between keys) until `drain` hands it a freed slot; when no
 * candidate is healthy corral does not refuse, it tries them in round-robin order.
 */
import type { Config } from '../config/config.js'
import type { PriorityClass } from '../config/priority-class.js'
import { queueFull, queueTimeout } from '../shared/errors.js'
import type { Affinity } from './affinity.js'
import type { BalancedRequest } from './balanced-request.js'
import { ClassWaits } from './class-waits.js'
import { FairQueue, type Waiter } from './fair-queue.js'
import type { Instance, WorkKind } from './instance.js'
import { RoundRobinPolicy } from './round-robin.js'
import { ELIGIBLE, FULL, type SelectionPolicy } from './selection-policy.js'

/** Called when a request gets its slot: its class, how long it waited in ms, and whether it queued. */
export type QueueWaitListener = (priority: PriorityClass, waitMs: number, queued: boolean) => void

/** What admission reads of the balancer, each time as it is now (a reload replaces all three). */
export interface AdmissionContext {
  readonly instances: () => readonly Instance[]
  readonly policy: () => SelectionPolicy
  readonly config: () => Config['balancer']
  /** Wall clock in ms. */
  readonly now: () => number
}

/** The bulk reserve is held while an interactive request came this recently (ms); else bulk uses every slot. */
const RESERVE_HOLD_MS = 10_000

export class Admission {
  /** Attempts that got their slot, over all instances. */
  dispatched = 0
  /** Waits per priority class, for stats. */
  readonly waits = new ClassWaits()
  readonly #context: AdmissionContext
  readonly #affinity: Affinity
  readonly #queue = new FairQueue<BalancedRequest>()
  /** Per instance (by index): the marks of the last `#mark`. */
  #eligible: Uint8Array
  #fallback: RoundRobinPolicy
  /** When the last interactive model request arrived (-Infinity: never); the reserve is held after one. */
  #interactiveAt = -Infinity
  readonly #waitListeners: QueueWaitListener[] = []

  constructor(context: AdmissionContext, affinity: Affinity) {
    this.#context = context
    this.#affinity = affinity
    const count = context.instances().length
    this.#eligible = new Uint8Array(count)
    this.#fallback = new RoundRobinPolicy(count)
  }

  /** The fleet changed: per-instance state is indexed by position, which just changed, so it starts afresh. */
  resize(count: number): void {
    this.#eligible = new Uint8Array(count)
    this.#fallback = new RoundRobinPolicy(count)
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
    const now = this.#context.now()
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
    const { maxQueue } = this.#context.config()
    // A quarter of the queue is kept for interactive requests: a flood of batches cannot make a
    // user's query bounce off a full queue.
    const limit = bulk ? maxQueue - Math.floor(maxQueue / 4) : maxQueue
    if (this.#queue.length >= limit) throw queueFull(maxQueue)
    return this.#wait(request, tried, now)
  }

  /** Gives back the slot taken by `acquire` (how the attempt went is the balancer's business). */
  release(instance: Instance, request: BalancedRequest): void {
    instance.inFlight--
    if (request.work !== undefined) instance.inFlightOf[request.work]--
    if (request.slot >= 0) {
      instance.expectedEnds[request.slot] = 0
      request.slot = -1
    }
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

  /** Requests in the queue that `instance` could serve. */
  queuedFor(instance: Instance): number {
    return this.#queue.countFor((w) => !w.tried?.has(instance) && (w.request.modelKey === undefined || instance.mayHave(w.request.modelKey)))
  }

  /** Called whenever a request gets its slot (metrics observe the queue wait by class). */
  onQueueWait(listener: QueueWaitListener): void {
    this.#waitListeners.push(listener)
  }

  /**
   * Hands free slots to waiting requests in the queue's order (interactive first, fair between
   * keys); a waiter no instance can serve yet is passed over, and bulk leaves the reserve free.
   */
  drain(): void {
    const now = this.#context.now()
    this.#queue.promote(now - this.#context.config().priority.bulkMaxWaitMs)
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
      if (!this.#context.instances().some((i) => !i.saturated)) break
    }
  }

  /** Settles every waiter with no instance (the balancer is closing). */
  failQueue(): void {
    for (const waiter of this.#queue.snapshot()) {
      this.#queue.remove(waiter)
      waiter.settle(undefined)
    }
  }

  /**
   * Marks in `#eligible` the instances this attempt may use now. 'free': at least one; 'full':
   * candidates exist but all are at their cap; 'none': no candidate at all.
   */
  #mark(request: BalancedRequest, tried: ReadonlySet<Instance> | undefined, now: number, reserve: boolean): 'free' | 'full' | 'none' {
    const instances = this.#context.instances()
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
      // A part of a batch goes only where the model has the digest the other parts use.
      if (request.digest !== undefined && instance.models?.get(model!) !== request.digest) continue
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
    const instances = this.#context.instances()
    if (request.fallback) return this.#fallback.pick(instances, this.#eligible)!
    const policy = this.#context.policy()
    // Waiting for a faster instance pays only while the queue is shorter than the slots it waits
    // for; beyond that (overload) every free slot must work, or the backlog grows faster.
    const placed =
      policy.place !== undefined && request.work !== undefined && this.#queue.length < this.#fullSlots(request.work)
        ? policy.place(instances, this.#eligible, request, now, queueAhead)!
        : policy.pick(instances, this.#eligible, request, now)!
    if (placed === 'wait' || request.affinityKey === undefined) return placed
    const { tolerance } = this.#context.config().affinity
    return this.#affinity.prefer(request.affinityKey, placed, request, now, instances, this.#eligible, policy, tolerance)
  }

  /** Whether bulk requests leave the reserve free now: an interactive one came recently. */
  #reserveHeld(now: number): boolean {
    return this.#context.config().priority.bulkReserve > 0 && this.interactiveRecently(now)
  }

  /** Whether an interactive model request came in the last 10 s (the reserve is held, bulk batches go in parts). */
  interactiveRecently(now = this.#context.now()): boolean {
    return now - this.#interactiveAt < RESERVE_HOLD_MS
  }

  /** True when `instance` carries as many requests of `work` as bulk may use there (its slots less the reserve, at least one). */
  #fullForBulk(instance: Instance, work: WorkKind): boolean {
    const slots = instance.slots(work)
    const reserved = Math.min(Math.floor(slots * this.#context.config().priority.bulkReserve), slots - 1)
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
    const instances = this.#context.instances()
    let slots = 0
    for (let i = 0; i < instances.length; i++) if (this.#eligible[i] === FULL) slots += instances[i]!.slots(work)
    return slots
  }

  /** Takes a slot on `instance` itself, with no selection and no queue (a part of a fan-out). */
  occupy(request: BalancedRequest, instance: Instance): void {
    this.#take(request, instance, this.#context.now())
  }

  /** Takes a slot on `instance` for `request`. */
  #take(request: BalancedRequest, instance: Instance, now: number): Instance {
    const policy = this.#context.policy()
    if (request.work !== undefined && policy.expectedServiceMs !== undefined) {
      request.slot = instance.holdSlot(now + policy.expectedServiceMs(instance, request, this.#context.instances()))
    }
    instance.inFlight++
    if (request.work !== undefined) request.level = ++instance.inFlightOf[request.work]
    instance.requests++
    instance.health.onDispatch()
    this.dispatched++
    return instance
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
        if (this.#queue.remove(waiter)) waiter.fail(queueTimeout(this.#context.now() - waiter.since))
      }, this.#context.config().queueTimeoutMs)
      request.upstream = {
        cancel: () => {
          if (this.#queue.remove(waiter)) waiter.settle(undefined)
        },
      }
      this.#queue.push(waiter)
    })
  }
}
