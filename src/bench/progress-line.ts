/**
 * A live status line on a terminal: turns done, the rate over the last second, errors, requests
 * in flight and time elapsed, redrawn in place (`\r`) four times a second. Nothing at all is
 * written when the stream is not a TTY (CI logs, pipes), so captured output is only the result.
 */
import { performance } from 'node:perf_hooks'
import type { RunRecorder } from './run-recorder.js'

const REDRAW_MS = 250
/** The current rate is measured over this many redraws (one second). */
const WINDOW = 4

export class ProgressLine {
  readonly #out: NodeJS.WriteStream
  readonly #enabled: boolean
  #timer: NodeJS.Timeout | undefined
  #recorder: RunRecorder | undefined
  #label = ''
  #limit = ''
  #samples: Array<{ at: number; done: number }> = []
  #width = 0

  constructor(out: NodeJS.WriteStream) {
    this.#out = out
    this.#enabled = out.isTTY === true
  }

  /** Starts showing `recorder`'s progress; `limit` describes the bound (`/ 30s`, `/ 1000 requests`). */
  start(recorder: RunRecorder, label: string, limit: string): void {
    if (!this.#enabled) return
    this.stop()
    this.#recorder = recorder
    this.#label = label
    this.#limit = limit
    this.#samples = [{ at: performance.now(), done: 0 }]
    this.#timer = setInterval(() => this.#draw(), REDRAW_MS)
    this.#timer.unref()
  }

  /** Clears the line. Idempotent. */
  stop(): void {
    if (this.#timer === undefined) return
    clearInterval(this.#timer)
    this.#timer = undefined
    this.#out.write(`\r${' '.repeat(this.#width)}\r`)
    this.#width = 0
  }

  #draw(): void {
    const r = this.#recorder!
    const now = performance.now()
    this.#samples.push({ at: now, done: r.done })
    if (this.#samples.length > WINDOW + 1) this.#samples.shift()
    const first = this.#samples[0]!
    const rate = now > first.at ? ((r.done - first.done) * 1000) / (now - first.at) : 0
    const line =
      `${this.#label}  ${r.done} done  ${rate.toFixed(1)} req/s  ${r.errors} errors  ` +
      `${r.inFlight} in flight  ${(r.elapsedMs / 1000).toFixed(1)}s${this.#limit}`
    this.#out.write(`\r${line.padEnd(this.#width)}`)
    this.#width = line.length
  }
}
