import type { VectorPlan } from './cache-policy.js'
import { parseVectors } from './embedding-answer.js'
import type { BackgroundJob } from './write-behind.js'
import type { StoredVector } from './vector-codec.js'

/** A vector ready for the store: its key and stored form. */
export interface VectorWrite {
  readonly key: string
  readonly value: Buffer
}

/**
 * An instance's embedding answer as captured (the chunks as they came, no copy), waiting to be
 * stored: read when the write-behind queue gets to it, or at once when a request needs its
 * vectors first (a follower of the same fetch, a lookup of one of its items, a partly cached
 * batch). Running it converts one vector after another to the stored form, within the slice's
 * deadline, then hands them all to `store` in one go (one pipelined round trip to Redis).
 */
export class VectorCapture implements BackgroundJob {
  readonly bytes: number
  /** The keys of the items that were sent, in order. */
  readonly keys: readonly string[]
  readonly #plan: VectorPlan
  readonly #sent: readonly string[]
  #chunks: Buffer[] | undefined
  #vectors: StoredVector[] | undefined
  #loadNs = 0
  #read = false
  #next = 0
  readonly #writes: VectorWrite[] = []
  readonly #store: (writes: readonly VectorWrite[]) => void
  readonly #release: () => void

  /**
   * `store` receives the converted vectors when the job is done; `release` is called once the job
   * is done or dropped (its items stop being findable through it).
   */
  constructor(
    plan: VectorPlan,
    chunks: Buffer[],
    keys: readonly string[],
    sent: readonly string[],
    store: (writes: readonly VectorWrite[]) => void,
    release: () => void,
  ) {
    this.#plan = plan
    this.#chunks = chunks
    this.keys = keys
    this.#sent = sent
    this.#store = store
    this.#release = release
    let bytes = 0
    let last: ArrayBufferLike | undefined
    // A chunk is a view on the socket read that brought it: count each read's whole buffer once.
    for (const chunk of chunks) {
      if (chunk.buffer !== last) bytes += chunk.buffer.byteLength
      last = chunk.buffer
    }
    this.bytes = bytes
  }

  /** The vectors in the order sent (the instance's texts), read now if need be; undefined when the answer is unreadable. */
  vectors(): readonly StoredVector[] | undefined {
    if (!this.#read) {
      this.#read = true
      const chunks = this.#chunks!
      const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)
      this.#chunks = undefined
      const parsed = parseVectors(this.#plan, body, this.#sent)
      this.#vectors = parsed?.vectors
      this.#loadNs = parsed?.loadNs ?? 0
    }
    return this.#vectors
  }

  /** The answer's `load_duration` (ns), once read. */
  get loadNs(): number {
    return this.#loadNs
  }

  /** The vector of item `key`, if it was sent in this answer and reads as numbers. */
  get(key: string): StoredVector | undefined {
    const vectors = this.vectors()
    if (vectors === undefined) return undefined
    const i = this.keys.indexOf(key)
    const vector = i < 0 ? undefined : vectors[i]
    return vector?.encode() === undefined ? undefined : vector
  }

  run(deadline: number): boolean {
    const vectors = this.vectors()
    if (vectors === undefined) return this.#finish(false)
    while (this.#next < vectors.length) {
      const vector = vectors[this.#next]!
      const value = vector.encode()
      // An item whose text is not an array of numbers is not stored; the others are. No decoded
      // view goes with the entry: a hit makes one (the instance's text would keep the whole answer
      // alive as long as the entry, and a view per entry is garbage the collector walks).
      if (value !== undefined) this.#writes.push({ key: this.keys[this.#next]!, value })
      this.#next++
      if (this.#next < vectors.length && performance.now() >= deadline) return false
    }
    return this.#finish(true)
  }

  drop(): void {
    this.#chunks = undefined
    this.#vectors = undefined
    this.#release()
  }

  #finish(store: boolean): boolean {
    if (store && this.#writes.length > 0) this.#store(this.#writes)
    this.#release()
    return true
  }
}
