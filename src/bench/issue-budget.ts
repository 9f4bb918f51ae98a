/**
 * When a phase stops issuing turns: after `requests` turns, when `durationMs` has passed, or when
 * `stop` fires (Ctrl-C). Turns already in flight are not its business (the drivers wait for them).
 */
export class IssueBudget {
  readonly #requests: number | undefined
  readonly #controller = new AbortController()
  readonly #timer: NodeJS.Timeout | undefined
  readonly #onStop: () => void
  readonly #stop: AbortSignal
  #issued = 0

  constructor(limits: { durationMs: number | undefined; requests: number | undefined }, stop: AbortSignal) {
    this.#requests = limits.requests
    this.#stop = stop
    this.#onStop = () => this.#controller.abort()
    if (stop.aborted) this.#controller.abort()
    else stop.addEventListener('abort', this.#onStop, { once: true })
    if (limits.durationMs !== undefined) this.#timer = setTimeout(this.#onStop, limits.durationMs)
  }

  /** Aborted once no more turns may be issued because of time or `stop`. */
  get signal(): AbortSignal {
    return this.#controller.signal
  }

  get issued(): number {
    return this.#issued
  }

  /** Claims one turn: false once the budget is spent. */
  take(): boolean {
    if (this.#controller.signal.aborted) return false
    if (this.#requests !== undefined && this.#issued >= this.#requests) return false
    this.#issued++
    return true
  }

  /** Releases the timer and the listener. Idempotent. */
  close(): void {
    clearTimeout(this.#timer)
    this.#stop.removeEventListener('abort', this.#onStop)
  }
}
