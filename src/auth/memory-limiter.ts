/**
 * Per-key limits counted in this process: one small record per key name with the current
 * minute's count and the requests in flight. Used alone without Redis, and by the Redis limiter
 * whenever Redis does not answer.
 */
import type { KeyLimits } from '../config/auth-config.js'
import { UNLIMITED, WINDOW_MS, secondsToWindowEnd, unlimited, type Admission, type Granted, type Limiter } from './limiter.js'

interface Bucket {
  window: number
  count: number
  inFlight: number
}

/** Above this many names (JWT subjects are not bounded by the config), idle ones are dropped. */
const SWEEP_ABOVE = 10_000

class Slot implements Granted {
  readonly ok = true as const
  #bucket: Bucket | undefined

  constructor(bucket: Bucket) {
    this.#bucket = bucket
  }

  release(): void {
    if (this.#bucket === undefined) return
    this.#bucket.inFlight--
    this.#bucket = undefined
  }
}

export class MemoryLimiter implements Limiter {
  readonly #buckets = new Map<string, Bucket>()

  acquire(name: string, limits: KeyLimits, now: number): Admission {
    if (unlimited(limits)) return UNLIMITED
    const window = Math.floor(now / WINDOW_MS)
    let bucket = this.#buckets.get(name)
    if (bucket === undefined) {
      if (this.#buckets.size >= SWEEP_ABOVE) this.#sweep(window)
      bucket = { window, count: 0, inFlight: 0 }
      this.#buckets.set(name, bucket)
    } else if (bucket.window !== window) {
      bucket.window = window
      bucket.count = 0
    }
    if (limits.rpm > 0 && bucket.count >= limits.rpm) {
      return { ok: false, limit: 'rpm', retryAfterSeconds: secondsToWindowEnd(now) }
    }
    if (limits.maxConcurrency > 0 && bucket.inFlight >= limits.maxConcurrency) {
      return { ok: false, limit: 'concurrency', retryAfterSeconds: 1 }
    }
    bucket.count++
    bucket.inFlight++
    return new Slot(bucket)
  }

  /** Requests in flight for `name` counted here. */
  inFlight(name: string): number {
    return this.#buckets.get(name)?.inFlight ?? 0
  }

  close(): Promise<void> {
    return Promise.resolve()
  }

  #sweep(window: number): void {
    for (const [name, b] of this.#buckets) if (b.inFlight === 0 && b.window !== window) this.#buckets.delete(name)
  }
}
