import type { CaptureListener, ResponseCapture } from './response-capture.js'

/** A follower's view of a flight's progress. */
export interface FlightObserver {
  /** The leader's answer started (status and content type are on `flight.capture`). */
  started(): void
  /** One chunk of the leader's answer, as it arrived. */
  data(chunk: Buffer): void
  /** The flight ended: `flight.result` is set when it succeeded. */
  settled(): void
}

/**
 * One request in progress for a key, led by the first request; identical requests that arrive
 * meanwhile follow it. Followers never affect the leader or each other: one leaving only removes
 * its observer.
 */
export class Flight<R> implements CaptureListener {
  /** The leader's capture, set when the leader forwards (streamed followers read its chunks). */
  capture: ResponseCapture | undefined
  state: 'running' | 'done' | 'failed' = 'running'
  /** What followers answer with, when the flight succeeded. */
  result: R | undefined
  readonly #observers = new Set<FlightObserver>()

  observe(observer: FlightObserver): void {
    this.#observers.add(observer)
  }

  unobserve(observer: FlightObserver): void {
    this.#observers.delete(observer)
  }

  /** Whether a follower is waiting for this flight (the leader's upstream request must go on for it). */
  get listened(): boolean {
    return this.#observers.size > 0
  }

  start(): void {
    for (const o of this.#observers) o.started()
  }

  data(chunk: Buffer): void {
    for (const o of this.#observers) o.data(chunk)
  }

  /** Resolves (never rejects) when the flight has settled, or at once if it has. */
  settledOrStarted(what: 'settled' | 'started'): Promise<void> {
    if (this.state !== 'running' || (what === 'started' && this.capture !== undefined && this.capture.status !== 0)) {
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      const observer: FlightObserver = {
        started: () => {
          if (what === 'started') done()
        },
        data: () => {},
        settled: () => done(),
      }
      const done = (): void => {
        this.unobserve(observer)
        resolve()
      }
      this.observe(observer)
    })
  }

  settle(result: R | undefined): void {
    if (this.state !== 'running') return
    this.result = result
    this.state = result === undefined ? 'failed' : 'done'
    for (const o of [...this.#observers]) o.settled()
    this.#observers.clear()
  }
}

/** The flights in progress, by key. */
export class SingleFlight<R> {
  readonly #flights = new Map<string, Flight<R>>()

  /** The flight in progress for `key`, if any. */
  get(key: string): Flight<R> | undefined {
    return this.#flights.get(key)
  }

  /** Starts leading `key`. */
  lead(key: string): Flight<R> {
    const flight = new Flight<R>()
    this.#flights.set(key, flight)
    return flight
  }

  /** Ends the flight for `key`: followers get `result`, or go their own way when undefined. */
  land(key: string, flight: Flight<R>, result: R | undefined): void {
    if (this.#flights.get(key) === flight) this.#flights.delete(key)
    flight.settle(result)
  }

  get size(): number {
    return this.#flights.size
  }
}
