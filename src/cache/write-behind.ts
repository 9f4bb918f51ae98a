/**
 * Runs the cache's capture work (reading captured answers, converting vectors, writing the
 * stores) beside the request path: in slices of at most a few milliseconds between the event
 * loop's I/O, with a share of the CPU that follows how busy the loop is. While the loop has idle
 * time the work uses it; while answers keep the loop saturated the work gets a small fixed share,
 * and what does not fit in the queue is skipped (and counted by the caller) rather than slowing
 * any answer down.
 */
import { performance } from 'node:perf_hooks'

/** One piece of capture work. */
export interface BackgroundJob {
  /** Bytes the job holds until it is done (its captured answer), counted against the queue's bound. */
  readonly bytes: number
  /** Works until `deadline` (`performance.now()` ms) or the end; true when done. */
  run(deadline: number): boolean
  /** Dropped without running to the end (queue full, or the cache closes): lets go of what it holds. */
  drop(): void
}

export interface WriteBehindOptions {
  /** Bytes queued jobs may hold at once; a job that does not fit is refused. */
  maxQueuedBytes: number
  /** Longest slice of work between two turns of the event loop, in ms. Default 1. */
  sliceMs?: number
  /** Share of the CPU the work may take while answers saturate the event loop. Default 0.05. */
  busyShare?: number
}

/**
 * How busy the event loop is with everything but the capture work decides the work's share:
 * below BUSY the loop has idle time and the work runs slice after slice in it (the loop's I/O
 * goes between slices); from BUSY on, answers are taken to need the loop (a closed-loop client's
 * throughput falls with every millisecond added to its answers) and the work keeps to its small
 * busy share.
 */
const BUSY = 0.7
/** How often the loop's utilisation is read, in ms. */
const WINDOW_MS = 50

export class WriteBehind {
  readonly #maxQueuedBytes: number
  readonly #sliceMs: number
  readonly #busyShare: number
  readonly #jobs: BackgroundJob[] = []
  #head = 0
  #queuedBytes = 0
  #scheduled = false
  #timer: NodeJS.Timeout | undefined
  /** Milliseconds of work the queue may still spend now (a token bucket, refilled by the share). */
  #tokensMs: number
  #share = 1
  /** The load without the capture work, smoothed over windows. */
  #others = 0
  #refilledAt = performance.now()
  #windowStart = performance.eventLoopUtilization()
  #windowStartAt = performance.now()
  /** Ms of work done in the current window (subtracted from the loop's active time). */
  #windowWorkMs = 0
  #closed = false
  readonly #tick = (): void => this.#run()

  constructor(options: WriteBehindOptions) {
    this.#maxQueuedBytes = options.maxQueuedBytes
    this.#sliceMs = options.sliceMs ?? 1
    this.#busyShare = options.busyShare ?? 0.05
    this.#tokensMs = this.#sliceMs
  }

  /** Bytes the queued jobs hold. */
  get queuedBytes(): number {
    return this.#queuedBytes
  }

  /** Jobs waiting or under way. */
  get size(): number {
    return this.#jobs.length - this.#head
  }

  /**
   * Queues `job`; false (and the job is not kept) when it does not fit: the queue holds
   * `maxQueuedBytes` at most, though an empty queue always takes one job.
   */
  add(job: BackgroundJob): boolean {
    if (this.#closed || (this.size > 0 && this.#queuedBytes + job.bytes > this.#maxQueuedBytes)) return false
    this.#jobs.push(job)
    this.#queuedBytes += job.bytes
    this.#schedule(0)
    return true
  }

  /** Runs every queued job to its end now (tests, shutdown). */
  drain(): void {
    while (this.size > 0) this.#runJobs(Infinity)
  }

  /** Drops what is queued; later jobs are refused. Idempotent. */
  close(): void {
    this.#closed = true
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    for (let i = this.#head; i < this.#jobs.length; i++) this.#jobs[i]!.drop()
    this.#jobs.length = 0
    this.#head = 0
    this.#queuedBytes = 0
  }

  #schedule(delayMs: number): void {
    if (this.#scheduled || this.#closed) return
    this.#scheduled = true
    if (delayMs <= 0) {
      setImmediate(this.#tick)
    } else {
      this.#timer = setTimeout(this.#tick, delayMs)
      this.#timer.unref()
    }
  }

  #run(): void {
    this.#scheduled = false
    this.#timer = undefined
    if (this.size === 0) return
    const now = performance.now()
    this.#refill(now)
    // While the loop has idle time, slices run back to back (the loop's I/O goes between them);
    // while it is busy, the token bucket holds the work to its share.
    const free = this.#share === 1
    if (!free && this.#tokensMs < this.#sliceMs / 4) {
      // Out of share: come back when a quarter slice has been earned.
      this.#schedule(Math.max(1, (this.#sliceMs / 4 - this.#tokensMs) / this.#share))
      return
    }
    this.#runJobs(now + (free ? this.#sliceMs : Math.min(this.#sliceMs, this.#tokensMs)))
    const spent = performance.now() - now
    this.#tokensMs = Math.max(0, this.#tokensMs - spent)
    this.#windowWorkMs += spent
    if (this.size > 0) this.#schedule(0)
  }

  /** Runs jobs in order until `deadline`. */
  #runJobs(deadline: number): void {
    while (this.size > 0) {
      const job = this.#jobs[this.#head]!
      if (!job.run(deadline)) return
      this.#jobs[this.#head++] = undefined as unknown as BackgroundJob
      this.#queuedBytes -= job.bytes
      if (this.#head > 1024 && this.#head * 2 > this.#jobs.length) {
        this.#jobs.splice(0, this.#head)
        this.#head = 0
      }
      if (performance.now() >= deadline) return
    }
    this.#jobs.length = 0
    this.#head = 0
  }

  /** Earns tokens for the time since the last refill, at the share the loop's load allows. */
  #refill(now: number): void {
    if (now - this.#windowStartAt >= WINDOW_MS) {
      const elu = performance.eventLoopUtilization(this.#windowStart)
      const elapsed = now - this.#windowStartAt
      // The loop's load without this queue's own work: what answers need.
      const others = Math.max(0, elu.active - this.#windowWorkMs) / elapsed
      this.#others += 0.5 * (others - this.#others)
      this.#share = this.#others >= BUSY ? this.#busyShare : 1
      this.#windowStart = performance.eventLoopUtilization()
      this.#windowStartAt = now
      this.#windowWorkMs = 0
    }
    this.#tokensMs = Math.min(2 * this.#sliceMs, this.#tokensMs + (now - this.#refilledAt) * this.#share)
    this.#refilledAt = now
  }
}
