/**
 * Everything one measured phase counts: user turns done and failed (by kind), latencies of turns,
 * of the first token and of each call, calls sent per route, and requests in flight over time
 * (peak, and the time-weighted mean: the concurrency the target actually saw).
 */
import { performance } from 'node:perf_hooks'
import { LatencyHistogram } from './latency-histogram.js'
import type { CallPath } from './target-client.js'

export class RunRecorder {
  readonly turns = new LatencyHistogram()
  readonly ttft = new LatencyHistogram()
  readonly callLatency = new Map<CallPath, LatencyHistogram>()
  /** Calls sent per route (failed ones included, cancelled ones too). */
  readonly callsSent = new Map<CallPath, number>()
  readonly errorsByKind = new Map<string, number>()
  ok = 0
  errors = 0
  cancelled = 0
  /** Turns started. */
  started = 0
  inFlight = 0
  peakInFlight = 0
  readonly startedAt = performance.now()
  #inFlightArea = 0
  #lastChange = this.startedAt
  endedAt: number | undefined

  /** Turns that ended (ok or failed). */
  get done(): number {
    return this.ok + this.errors
  }

  turnStarted(): void {
    this.#integrate()
    this.started++
    this.inFlight++
    if (this.inFlight > this.peakInFlight) this.peakInFlight = this.inFlight
  }

  turnEnded(outcome: { ok: true; ms: number; ttftMs: number | undefined } | { ok: false; kind: string }): void {
    this.#integrate()
    this.inFlight--
    if (outcome.ok) {
      this.ok++
      this.turns.record(outcome.ms)
      if (outcome.ttftMs !== undefined) this.ttft.record(outcome.ttftMs)
    } else if (outcome.kind === 'cancelled') {
      this.cancelled++
    } else {
      this.errors++
      this.errorsByKind.set(outcome.kind, (this.errorsByKind.get(outcome.kind) ?? 0) + 1)
    }
  }

  callSent(path: CallPath): void {
    this.callsSent.set(path, (this.callsSent.get(path) ?? 0) + 1)
  }

  callSucceeded(path: CallPath, ms: number): void {
    let h = this.callLatency.get(path)
    if (h === undefined) this.callLatency.set(path, (h = new LatencyHistogram()))
    h.record(ms)
  }

  /** Marks the end of the phase (idempotent); elapsed time stops here. */
  end(): void {
    if (this.endedAt !== undefined) return
    this.#integrate()
    this.endedAt = performance.now()
  }

  get elapsedMs(): number {
    return (this.endedAt ?? performance.now()) - this.startedAt
  }

  /** Requests in flight, averaged over the phase's time. */
  get meanInFlight(): number {
    this.#integrate()
    const ms = this.elapsedMs
    return ms <= 0 ? 0 : this.#inFlightArea / ms
  }

  #integrate(): void {
    const now = this.endedAt ?? performance.now()
    this.#inFlightArea += this.inFlight * (now - this.#lastChange)
    this.#lastChange = now
  }
}
