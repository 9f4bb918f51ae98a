/**
 * Requests waiting in corral for a free instance slot (HAProxy's `maxqueue` / `timeout queue`),
 * in two priority classes with fair shares between keys inside each.
 *
 * Order: every interactive waiter before every bulk one; a bulk waiter that has waited
 * `bulk_max_wait` is promoted to the front of the interactive class, so bulk never starves.
 * Within a class, keys (tenants) share by weighted fair queueing (start-time fair queueing, as in
 * Goyal et al. 1996): a waiter's tag is `max(class virtual time, its tenant's last tag) + 1 /
 * weight`, waiters go in tag order (ties in arrival order) and serving one moves the class's
 * virtual time to its tag. A key that floods gets tags far ahead, so another key's request,
 * tagged near the virtual time, goes before the flood's backlog. Costs one sorted insert per
 * enqueue (the queue is bounded by `max_queue`).
 */
import type { Instance } from './instance.js'
import type { PriorityClass } from '../config/priority-class.js'

export interface Waiter<R> {
  readonly request: R
  readonly tried: ReadonlySet<Instance> | undefined
  readonly since: number
  /** The class it was queued in. */
  readonly priority: PriorityClass
  /** Who it is for fair shares (a key's name; '' for nobody in particular). */
  readonly tenant: string
  /** The tenant's weight (more: a larger share). */
  readonly weight: number
  /** Set when a bulk waiter waited long enough to be served as interactive. */
  promoted: boolean
  /** Fair-queueing tag within its class (lower goes first); set by the queue. */
  tag: number
  /** Arrival number, breaking ties between equal tags. */
  seq: number
  /** Settles the wait: with an instance (its slot already taken), or undefined (no candidate left / client gone). */
  settle(instance: Instance | undefined): void
  /** Fails the wait (timeout). */
  fail(err: Error): void
  timer: NodeJS.Timeout | undefined
}

/** Tenants whose last tag is behind the virtual time no longer matter; forgotten past this many. */
const TENANTS_KEPT = 1024

/** One class's waiters in tag order, its virtual time and its tenants' last tags. */
class ClassQueue<R> {
  readonly waiters: Waiter<R>[] = []
  virtualTime = 0
  readonly #lastTag = new Map<string, number>()

  /** Tags and inserts `waiter` in order; `front`: tagged at the virtual time (a promoted waiter). */
  insert(waiter: Waiter<R>, front: boolean): void {
    if (front) waiter.tag = this.virtualTime
    else {
      const start = Math.max(this.virtualTime, this.#lastTag.get(waiter.tenant) ?? 0)
      waiter.tag = start + 1 / waiter.weight
      if (this.#lastTag.size >= TENANTS_KEPT) this.#forget()
      this.#lastTag.set(waiter.tenant, waiter.tag)
    }
    const list = this.waiters
    let i = list.length
    while (i > 0 && before(waiter, list[i - 1]!)) i--
    list.splice(i, 0, waiter)
  }

  /** Records that `waiter` was served: the class's virtual time moves to its tag. */
  served(waiter: Waiter<R>): void {
    if (waiter.tag > this.virtualTime) this.virtualTime = waiter.tag
  }

  remove(waiter: Waiter<R>): boolean {
    const i = this.waiters.indexOf(waiter)
    if (i === -1) return false
    this.waiters.splice(i, 1)
    return true
  }

  #forget(): void {
    for (const [tenant, tag] of this.#lastTag) if (tag <= this.virtualTime) this.#lastTag.delete(tenant)
  }
}

function before<R>(a: Waiter<R>, b: Waiter<R>): boolean {
  return a.tag < b.tag || (a.tag === b.tag && a.seq < b.seq)
}

export class FairQueue<R> {
  readonly #interactive = new ClassQueue<R>()
  readonly #bulk = new ClassQueue<R>()
  #seq = 0

  get length(): number {
    return this.#interactive.waiters.length + this.#bulk.waiters.length
  }

  /** Waiters queued as `priority` now (promoted bulk waiters count as bulk). */
  lengthOf(priority: PriorityClass): number {
    if (priority === 'bulk') return this.#bulk.waiters.length + this.#promoted()
    return this.#interactive.waiters.length - this.#promoted()
  }

  push(waiter: Waiter<R>): void {
    waiter.seq = this.#seq++
    this.#classOf(waiter).insert(waiter, false)
  }

  /** Removes a waiter (served, timed out or abandoned); false if it was not queued. */
  remove(waiter: Waiter<R>): boolean {
    const removed = this.#classOf(waiter).remove(waiter)
    if (removed && waiter.timer !== undefined) clearTimeout(waiter.timer)
    return removed
  }

  /** Removes a waiter that is being served, moving its class's virtual time. */
  serve(waiter: Waiter<R>): void {
    const queue = this.#classOf(waiter)
    if (!queue.remove(waiter)) return
    if (waiter.timer !== undefined) clearTimeout(waiter.timer)
    queue.served(waiter)
  }

  /** Moves bulk waiters queued at or before `sinceAtMost` to the front of the interactive class. */
  promote(sinceAtMost: number): void {
    const bulk = this.#bulk.waiters
    // Oldest first: the bulk list is in tag order, not arrival order, so scan it whole.
    for (let i = 0; i < bulk.length; ) {
      const w = bulk[i]!
      if (w.since > sinceAtMost) {
        i++
        continue
      }
      bulk.splice(i, 1)
      w.promoted = true
      this.#interactive.insert(w, true)
    }
  }

  /** The waiters in serving order (a snapshot: serving one may remove it). */
  snapshot(): readonly Waiter<R>[] {
    return this.#interactive.waiters.concat(this.#bulk.waiters)
  }

  /** Waiters that pass `test`, for stats. */
  countFor(test: (w: Waiter<R>) => boolean): number {
    let n = 0
    for (const w of this.#interactive.waiters) if (test(w)) n++
    for (const w of this.#bulk.waiters) if (test(w)) n++
    return n
  }

  #classOf(waiter: Waiter<R>): ClassQueue<R> {
    return waiter.priority === 'interactive' || waiter.promoted ? this.#interactive : this.#bulk
  }

  #promoted(): number {
    let n = 0
    for (const w of this.#interactive.waiters) if (w.promoted) n++
    return n
  }
}
