import type { PriorityClass } from '../config/priority-class.js'

/** What one priority class's requests waited in corral's queue, for `/api/load-balancer-stats`. */
export interface ClassWaitStats {
  /** Requests of the class that got a slot (at once or after waiting), since start. */
  served: number
  /** Of those, how many waited in the queue. */
  queued: number
  /** Sum of their waits, in ms. */
  waitMsTotal: number
  /** The longest wait, in ms, since start. */
  waitMsMax: number
}

/** Waits per class, counted as requests get their slot; a few numbers, updated in place. */
export class ClassWaits {
  readonly byClass: Readonly<Record<PriorityClass, ClassWaitStats>> = {
    interactive: { served: 0, queued: 0, waitMsTotal: 0, waitMsMax: 0 },
    bulk: { served: 0, queued: 0, waitMsTotal: 0, waitMsMax: 0 },
  }

  record(priority: PriorityClass, waitMs: number, queued: boolean): void {
    const s = this.byClass[priority]
    s.served++
    if (!queued) return
    s.queued++
    s.waitMsTotal += waitMs
    if (waitMs > s.waitMsMax) s.waitMsMax = waitMs
  }
}
