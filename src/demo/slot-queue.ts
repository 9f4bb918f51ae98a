/**
 * Inference slots like OLLAMA_NUM_PARALLEL with a FIFO queue like OLLAMA_MAX_QUEUE in front: a
 * request waits for a free slot in arrival order, leaves the queue when its client goes away,
 * and gets Ollama's 503 when the queue is full. Time queued counts toward load_duration, as in
 * Ollama.
 */
import { SERVER_BUSY_ERROR } from './fake-ollama-types.js'
import { Gone, type FakeExchange } from './fake-exchange.js'

export class SlotQueue {
  #numParallel: number
  readonly #maxQueue: number
  /** Called after every change a waiter may observe (queue length, slots). */
  readonly #changed: () => void
  /** FIFO of requests waiting for a slot; each entry grants it. */
  readonly #queue: Array<() => void> = []
  #busySlots = 0

  constructor(numParallel: number, maxQueue: number, changed: () => void) {
    this.#numParallel = numParallel
    this.#maxQueue = maxQueue
    this.#changed = changed
  }

  /** Requests waiting for a slot. */
  get queued(): number { return this.#queue.length }

  /** Slots in use. */
  get busy(): number { return this.#busySlots }

  setNumParallel(n: number): void {
    this.#numParallel = n
    // More slots: waiting requests take them at once.
    while (this.#busySlots < n && this.#queue.length > 0) {
      this.#busySlots++
      this.#queue.shift()!()
    }
    this.#changed()
  }

  /** Waits for a slot (FIFO), runs `fn`, frees the slot; 503 when the queue is full. */
  async run(ex: FakeExchange, fn: () => Promise<void> | void): Promise<void> {
    if (this.#busySlots >= this.#numParallel) {
      if (this.#queue.length >= this.#maxQueue) return ex.sendError(503, SERVER_BUSY_ERROR)
      await new Promise<void>((resolve, reject) => {
        const grant = (): void => {
          ex.signal.removeEventListener('abort', leave)
          resolve()
        }
        const leave = (): void => {
          this.#queue.splice(this.#queue.indexOf(grant), 1)
          this.#changed()
          reject(new Gone())
        }
        this.#queue.push(grant)
        ex.signal.addEventListener('abort', leave, { once: true })
        this.#changed()
      })
      // The slot was handed over by the releasing request: #busySlots already counts it.
    } else {
      this.#busySlots++
    }
    ex.slotNs = process.hrtime.bigint()
    try {
      await fn()
    } finally {
      // Slots taken away by setNumParallel go when their request ends.
      const next = this.#busySlots > this.#numParallel ? undefined : this.#queue.shift()
      if (next !== undefined) next()
      else this.#busySlots--
      this.#changed()
    }
  }
}
