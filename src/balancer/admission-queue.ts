/**
 * Requests waiting in corral for a free instance slot (HAProxy's `maxqueue` / `timeout queue`):
 * a request whose candidate instances are all at `max_concurrency` waits here, in arrival order,
 * and is handed to whichever instance frees first, instead of piling into one Ollama's private
 * FIFO. Bounded in length and in waiting time.
 */
import type { Instance } from './instance.js'

export interface Waiter<R> {
  readonly request: R
  readonly tried: ReadonlySet<Instance> | undefined
  readonly since: number
  /** Settles the wait: with an instance (its slot already taken), or undefined (no candidate left / client gone). */
  settle(instance: Instance | undefined): void
  /** Fails the wait (timeout). */
  fail(err: Error): void
  timer: NodeJS.Timeout | undefined
}

export class AdmissionQueue<R> {
  #waiters: Waiter<R>[] = []

  get length(): number {
    return this.#waiters.length
  }

  push(waiter: Waiter<R>): void {
    this.#waiters.push(waiter)
  }

  /** Removes a waiter (served, timed out or abandoned); false if it was not queued. */
  remove(waiter: Waiter<R>): boolean {
    const i = this.#waiters.indexOf(waiter)
    if (i === -1) return false
    this.#waiters.splice(i, 1)
    if (waiter.timer !== undefined) clearTimeout(waiter.timer)
    return true
  }

  /** The waiters in arrival order (a snapshot: serving one may remove it). */
  snapshot(): readonly Waiter<R>[] {
    return this.#waiters.slice()
  }

  /** Waiters for which `instance` is a candidate, for stats. */
  countFor(test: (w: Waiter<R>) => boolean): number {
    let n = 0
    for (const w of this.#waiters) if (test(w)) n++
    return n
  }
}
