/**
 * A bulk job beside the users (`corral bench --bulk N`): N clients sending `/api/embed` batches of
 * `--bulk-batch` distinct chunks back to back, as an ingestion job does, on connections of their
 * own (so they never queue in the users' pool). Reported apart: batches per second and batch
 * latency, next to the users' latencies, to see what the one costs the other.
 */
import { performance } from 'node:perf_hooks'
import { LatencyHistogram, type LatencySummary } from './latency-histogram.js'
import { TargetClient } from './target-client.js'

/** The bulk job's part of a run's result. */
export interface BulkResult {
  clients: number
  batch_size: number
  /** Batches answered whole. */
  batches: number
  errors: number
  /** Batches answered per second of the measured phase. */
  batches_per_second: number
  latency_ms: LatencySummary
}

export class BulkJob {
  readonly #client: TargetClient
  readonly #clients: number
  readonly #batchSize: number
  readonly #model: string
  readonly #latency = new LatencyHistogram()
  readonly #stop = new AbortController()
  #batches = 0
  #errors = 0
  #chunk = 0
  #running: Promise<void> | undefined
  #startedAt = 0

  constructor(url: string, clients: number, batchSize: number, model: string, timeoutMs: number) {
    this.#client = new TargetClient(url, clients, timeoutMs)
    this.#clients = clients
    this.#batchSize = batchSize
    this.#model = model
  }

  /** Starts the clients; they run until `stop`. */
  start(): void {
    this.#startedAt = performance.now()
    const client = async (): Promise<void> => {
      while (!this.#stop.signal.aborted) {
        const input = Array.from({ length: this.#batchSize }, () => `bulk chunk ${this.#chunk++} of a corpus being indexed`)
        const out = await this.#client.call('/api/embed', { model: this.#model, input }, false, this.#stop.signal, performance.now())
        if (out.ok) {
          this.#batches++
          this.#latency.record(out.ms)
        } else if (out.kind !== 'cancelled') this.#errors++
      }
    }
    this.#running = Promise.all(Array.from({ length: this.#clients }, client)).then(() => undefined)
  }

  /** Stops the clients (batches in flight are cancelled, not counted) and gives the result. */
  async stop(): Promise<BulkResult> {
    const elapsedS = (performance.now() - this.#startedAt) / 1000
    this.#stop.abort()
    await this.#running
    await this.#client.close()
    return {
      clients: this.#clients,
      batch_size: this.#batchSize,
      batches: this.#batches,
      errors: this.#errors,
      batches_per_second: elapsedS <= 0 ? 0 : Math.round((this.#batches / elapsedS) * 100) / 100,
      latency_ms: this.#latency.summary(),
    }
  }
}
