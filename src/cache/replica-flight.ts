/**
 * Single flight across corral replicas that share Redis: before a replica sends a generation
 * upstream it takes a short lock on the answer's key (SET NX PX). A replica that finds the lock
 * held waits for the answer to land in the store instead, polling with a backoff (10 ms doubling
 * to 200 ms: a few GETs a second per waiting key and replica, since requests of one replica
 * already share one local flight). It sends its own request when the lock goes without an answer
 * (the holder's answer was not storable, or it died) or after the lock's TTL. Redis failing
 * means no lock: every replica goes upstream, as without this.
 */
import { setTimeout as delay } from 'node:timers/promises'
import type { KeySpace } from './cache-key.js'
import type { CacheEntry, CacheStore } from './cache-store.js'

const FIRST_POLL_MS = 10
const MAX_POLL_MS = 200

/** `claimed`: go upstream, then `release`; `unclaimed`: go upstream without a lock; or the answer. */
export type ReplicaTurn = 'claimed' | 'unclaimed' | CacheEntry

export class ReplicaFlight {
  readonly #store: CacheStore
  readonly #keys: KeySpace
  readonly #lockTtlMs: number
  readonly #now: () => number

  constructor(store: CacheStore, keys: KeySpace, lockTtlMs: number, now: () => number = Date.now) {
    this.#store = store
    this.#keys = keys
    this.#lockTtlMs = lockTtlMs
    this.#now = now
  }

  /** Takes the lock of `key`, or waits for another replica's answer under it. */
  async turn(key: string): Promise<ReplicaTurn> {
    const lock = this.#keys.lock(key)
    if (await this.#claim(lock)) return 'claimed'
    const end = this.#now() + this.#lockTtlMs
    let pauseMs = FIRST_POLL_MS
    while (this.#now() < end) {
      await delay(pauseMs)
      pauseMs = Math.min(pauseMs * 2, MAX_POLL_MS)
      const entry = await this.#store.get(key)
      if (entry !== undefined) return entry
      if (!(await this.#held(lock))) {
        // The holder finished without a storable answer, or its lock expired: one of the
        // waiting replicas takes over, the others keep waiting.
        if (await this.#claim(lock)) return 'claimed'
      }
    }
    return 'unclaimed'
  }

  /** Releases the lock of `key` taken by `turn` (after the answer was written). */
  release(key: string): Promise<void> {
    return this.#store.release?.(this.#keys.lock(key)) ?? Promise.resolve()
  }

  #claim(lock: string): Promise<boolean> {
    return this.#store.claim?.(lock, this.#lockTtlMs) ?? Promise.resolve(true)
  }

  #held(lock: string): Promise<boolean> {
    return this.#store.held?.(lock) ?? Promise.resolve(false)
  }
}
