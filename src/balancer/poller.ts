/**
 * The timing the background polls of the fleet share (active health checks, model discovery): a
 * round now at start, then one every interval; a round still running when the next is due is
 * shared, not doubled; a reload's new interval restarts the timer; `close` stops it and waits for
 * the round in progress. The timer never keeps the process alive.
 */
export class Poller {
  readonly #round: () => Promise<void>
  #intervalMs: number
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined
  #first: Promise<void> | undefined
  #closed = false

  constructor(round: () => Promise<void>, intervalMs: number) {
    this.#round = round
    this.#intervalMs = intervalMs
  }

  /** Runs a first round now, then one every interval. */
  start(): void {
    if (this.#closed || this.#timer !== undefined) return
    this.#first = this.run()
    this.#schedule()
  }

  /** Whether `start` was called (and not `close`). */
  get started(): boolean {
    return this.#timer !== undefined && !this.#closed
  }

  get closed(): boolean {
    return this.#closed
  }

  /** Resolves when the first round after `start` is done. */
  firstRound(): Promise<void> {
    return this.#first ?? Promise.resolve()
  }

  /** A round now (one already running is shared). */
  run(): Promise<void> {
    this.#running ??= this.#round().finally(() => {
      this.#running = undefined
    })
    return this.#running
  }

  /** A new interval from a reload: the timer restarts, the next round one new interval from now. */
  setInterval(intervalMs: number): void {
    if (intervalMs === this.#intervalMs) return
    this.#intervalMs = intervalMs
    if (this.started) {
      clearInterval(this.#timer)
      this.#schedule()
    }
  }

  /** Stops the rounds; waits for one in progress. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true
    clearInterval(this.#timer)
    await this.#running
  }

  #schedule(): void {
    this.#timer = setInterval(() => void this.run(), this.#intervalMs)
    this.#timer.unref()
  }
}
