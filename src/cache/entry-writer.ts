/**
 * Stores what the caches captured, off the answers' path: entries go to the store as soon as
 * the answer is done (counted when the store acknowledges them), captured embedding answers wait
 * in a bounded write-behind queue. Until an entry has landed, lookups find it here.
 */
import type { Logger } from 'pino'
import type { CacheConfig, CacheLayerName } from '../config/config.js'
import type { CacheStats } from './cache-stats.js'
import type { CacheEntry, CacheStore } from './cache-store.js'
import type { StoredVector } from './vector-codec.js'
import type { VectorCapture, VectorWrite } from './vector-capture.js'
import { WriteBehind } from './write-behind.js'

/**
 * Captured embedding answers waiting to be stored may hold this much memory; a capture that does
 * not fit is not stored (counted as skipped). About fifty 32-chunk batches of 768-d vectors, half
 * a second of a fast ingestion: enough to ride out a burst, bounded while corral is saturated.
 */
const WRITE_QUEUE_BYTES = 16 * 1024 * 1024
/** Store writes awaiting their acknowledgement (a slow Redis); beyond it new writes are skipped. */
const MAX_PENDING_WRITES = 4096

export class EntryWriter {
  readonly #config: () => CacheConfig
  readonly #store: CacheStore
  readonly #stats: CacheStats
  readonly #logger: Logger
  /** Writes not yet acknowledged by the store (awaited by `settle()` and `close()`). */
  readonly #pending = new Set<Promise<unknown>>()
  /**
   * Entries being written, by key, until the store acknowledges them: a request whose (remote)
   * lookup was sent before the write landed finds the answer here instead of going upstream.
   */
  readonly #landing = new Map<string, CacheEntry>()
  /** Captured embedding answers waiting for the writer, by item key: lookups find their vectors there. */
  readonly #queued = new Map<string, VectorCapture>()
  /** Capture work off the answers' path. */
  readonly #writer = new WriteBehind({ maxQueuedBytes: WRITE_QUEUE_BYTES })

  /** `config`: the settings in force (a reload replaces them). */
  constructor(config: () => CacheConfig, store: CacheStore, stats: CacheStats, logger: Logger) {
    this.#config = config
    this.#store = store
    this.#stats = stats
    this.#logger = logger
  }

  /**
   * Stores an entry off the response path; counted when the store acknowledges it. The promise
   * settles when the store has answered (never rejects); undefined when the entry is too large.
   */
  write(layer: CacheLayerName, key: string, entry: CacheEntry): Promise<void> | undefined {
    const config = this.#config()
    const ttlMs = config.layers[layer].ttlMs
    if (entry.value.length > config.maxEntryBytes) return undefined
    if (this.#pending.size >= MAX_PENDING_WRITES) {
      this.#stats.skipped(layer, 'store', 1)
      return undefined
    }
    this.#landing.set(key, entry)
    const write = this.#store.set(key, entry.value, ttlMs, entry.view).then(
      (stored) => {
        if (stored) this.#stats.wrote(layer)
        else this.#stats.skipped(layer, 'store', 1)
      },
      (err: unknown) => this.#logger.error({ err, key }, 'cache write failed'),
    )
    this.#pending.add(write)
    void write.finally(() => {
      this.#pending.delete(write)
      if (this.#landing.get(key) === entry) this.#landing.delete(key)
    })
    return write
  }

  /** The entry being written under `key`, until the store acknowledged it. */
  landing(key: string): CacheEntry | undefined {
    return this.#landing.size === 0 ? undefined : this.#landing.get(key)
  }

  /** The vector of `key` in a captured answer still waiting for the writer. */
  queuedVector(key: string): StoredVector | undefined {
    return this.#queued.size === 0 ? undefined : this.#queued.get(key)?.get(key)
  }

  /** Hands a captured answer to the write-behind queue, or skips it (counted) when the queue is full. */
  queue(layer: CacheLayerName, job: VectorCapture): void {
    if (!this.#writer.add(job)) {
      this.#stats.skipped(layer, 'overload', job.keys.length)
      job.drop()
      return
    }
    for (const key of job.keys) this.#queued.set(key, job)
  }

  unqueue(job: VectorCapture): void {
    for (const key of job.keys) if (this.#queued.get(key) === job) this.#queued.delete(key)
  }

  /** Writes a captured answer's vectors: issued together, so Redis gets them in one pipelined round trip. */
  writeVectors(layer: CacheLayerName, writes: readonly VectorWrite[]): void {
    for (const { key, value } of writes) void this.write(layer, key, { value, view: undefined })
  }

  /** Stores every captured answer now and resolves when the store has acknowledged every write. */
  async settle(): Promise<void> {
    this.#writer.drain()
    while (this.#pending.size > 0) await Promise.all([...this.#pending])
  }

  close(): void {
    this.#writer.close()
  }
}
