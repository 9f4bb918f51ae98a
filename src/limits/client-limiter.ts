/**
 * Requests in flight per client address (`server.max_requests_per_client`), so that one client
 * cannot take every instance slot and queue place for itself. A slot is taken when a request
 * arrives and given back exactly once when its response closes (finished, aborted or failed).
 */

export class ClientLimiter {
  #max: number
  readonly #inFlight = new Map<string, number>()
  #total = 0
  #waiters: { n: number; resolve: () => void }[] = []

  /** `max`: requests one client may have in flight; 0 turns the limit off. */
  constructor(max: number) {
    this.#max = max
  }

  get max(): number {
    return this.#max
  }

  /** Whether the limit is on (`server.max_requests_per_client` > 0). */
  get enabled(): boolean {
    return this.#max > 0
  }

  /**
   * A new limit (hot reload): slots already taken stay taken and are given back as usual; a
   * client over a lowered limit gets new slots once it is under it again.
   */
  set max(max: number) {
    this.#max = max
  }

  /** Requests in flight, all clients together. */
  get inFlight(): number {
    return this.#total
  }

  /** Clients with at least one request in flight. */
  get clients(): number {
    return this.#inFlight.size
  }

  /** Takes a slot for `client`; false when it already has `max` in flight. */
  tryAcquire(client: string): boolean {
    const n = this.#inFlight.get(client) ?? 0
    if (n >= this.#max) return false
    this.#inFlight.set(client, n + 1)
    this.#total++
    return true
  }

  /** Gives back a slot taken by `tryAcquire`. */
  release(client: string): void {
    const n = this.#inFlight.get(client)
    if (n === undefined) return
    if (n <= 1) this.#inFlight.delete(client)
    else this.#inFlight.set(client, n - 1)
    this.#total--
    if (this.#waiters.length > 0) this.#wake()
  }

  /** Resolves once at most `n` requests are in flight (all clients together). */
  whenInFlightAtMost(n: number): Promise<void> {
    if (this.#total <= n) return Promise.resolve()
    return new Promise((resolve) => this.#waiters.push({ n, resolve }))
  }

  #wake(): void {
    const waiting = this.#waiters
    this.#waiters = []
    for (const w of waiting) {
      if (this.#total <= w.n) w.resolve()
      else this.#waiters.push(w)
    }
  }
}
