import { LRUCache } from 'lru-cache'
import type { CacheEntry, CacheStore, LayerUsage, RemoteHealth } from './cache-store.js'

export interface MemoryStoreOptions {
  /** Bytes the store may hold: values, keys and each entry's bookkeeping. */
  maxBytes: number
  /** Largest single entry, in bytes; larger ones are not stored. */
  maxEntryBytes: number
  /** The layer a key belongs to, for usage figures. */
  layerOf: (key: string) => string
}

/**
 * Memory an entry takes besides its value's bytes and its key's characters: the value's view
 * object, the entry, the LRU's slots and TTL bookkeeping, and its share of the slabs' slack
 * (measured with the ingestion benchmark's million vectors: about 4 KB each for a 3,080-byte
 * value and a 100-character key, RSS over the idle process).
 */
const ENTRY_OVERHEAD_BYTES = 800
/** Values are copied into slabs of this size: one allocation per slab, not per entry. */
const SLAB_BYTES = 1024 * 1024
/** Larger values get a buffer of their own. */
const MAX_SLAB_VALUE_BYTES = 64 * 1024

/** A shared allocation that small values are copied into, with its bytes still in use. */
interface Slab {
  readonly buffer: Buffer
  used: number
  live: number
}

interface MemoryEntry extends CacheEntry {
  value: Buffer
  readonly layer: string
  readonly size: number
  /** The slab the value lives in (undefined: a buffer of its own). */
  slab: Slab | undefined
}

/**
 * The in-memory store: an LRU bounded in bytes, with a TTL per entry. Entries keep their decoded
 * view, so a hit costs one map lookup and no decoding.
 *
 * Small values live in 1 MiB slabs rather than a buffer each: a buffer per 3 KB vector costs a
 * backing store and an allocator chunk apiece, and the churn of a full store (every new vector
 * evicts an old one) fragments the allocator until the process holds far more than the bound.
 * A slab's memory returns when its last value is gone; eviction in LRU order empties old slabs
 * whole, and a value read from a slab that is mostly dead moves to the current one, so a few
 * hot values do not keep many old slabs alive.
 */
export class MemoryStore implements CacheStore {
  readonly kind = 'memory'
  readonly #lru: LRUCache<string, MemoryEntry>
  readonly #maxEntryBytes: number
  readonly #layerOf: (key: string) => string
  readonly #usage = new Map<string, LayerUsage>()
  /** The slab new small values go to. */
  #slab: Slab | undefined

  constructor(options: MemoryStoreOptions) {
    this.#maxEntryBytes = Math.min(options.maxEntryBytes, options.maxBytes)
    this.#layerOf = options.layerOf
    this.#lru = new LRUCache<string, MemoryEntry>({
      maxSize: Math.max(1, options.maxBytes),
      sizeCalculation: (entry) => entry.size,
      ttlAutopurge: false,
      dispose: (entry, _key, reason) => {
        if (entry.slab !== undefined) entry.slab.live -= entry.value.length
        const usage = this.#usageOf(entry.layer)
        usage.entries--
        usage.bytes -= entry.size
        if (reason === 'evict') usage.evictions++
      },
    })
  }

  get(key: string): CacheEntry | undefined {
    const entry = this.#lru.get(key)
    const slab = entry?.slab
    if (slab !== undefined && slab !== this.#slab && slab.live * 2 < slab.used) {
      // Most of its slab is dead: move the value to the current slab so that one can go.
      slab.live -= entry!.value.length
      this.#place(entry!, entry!.value)
      entry!.view = undefined
    }
    return entry
  }

  /** Stores at once and returns the entry held (undefined when too large). */
  put(key: string, value: Buffer, ttlMs: number, view?: unknown): CacheEntry | undefined {
    const size = value.length + key.length + ENTRY_OVERHEAD_BYTES
    if (size > this.#maxEntryBytes || ttlMs <= 0) return undefined
    const entry: MemoryEntry = { value, view, layer: this.#layerOf(key), size, slab: undefined }
    this.#place(entry, value)
    this.#lru.set(key, entry, { ttl: ttlMs })
    if (this.#lru.peek(key) !== entry) {
      if (entry.slab !== undefined) entry.slab.live -= entry.value.length
      return undefined
    }
    const usage = this.#usageOf(entry.layer)
    usage.entries++
    usage.bytes += size
    return entry
  }

  set(key: string, value: Buffer, ttlMs: number, view?: unknown): Promise<boolean> {
    return Promise.resolve(this.put(key, value, ttlMs, view) !== undefined)
  }

  delete(key: string): Promise<boolean> {
    return Promise.resolve(this.#lru.delete(key))
  }

  flush(prefixes: readonly string[]): Promise<number> {
    let n = 0
    for (const key of [...this.#lru.keys()]) {
      if (prefixes.some((p) => key.startsWith(p)) && this.#lru.delete(key)) n++
    }
    return Promise.resolve(n)
  }

  usage(layer: string): LayerUsage {
    this.#lru.purgeStale()
    return { ...this.#usageOf(layer) }
  }

  health(): RemoteHealth | undefined {
    return undefined
  }

  close(): Promise<void> {
    this.#lru.clear()
    this.#slab = undefined
    return Promise.resolve()
  }

  /** Copies `value` into the current slab (a new one when it is full), or into a buffer of its own when large. */
  #place(entry: MemoryEntry, value: Buffer): void {
    if (value.length > MAX_SLAB_VALUE_BYTES) {
      entry.value = ownBuffer(value)
      entry.slab = undefined
      return
    }
    let slab = this.#slab
    if (slab === undefined || slab.used + value.length > SLAB_BYTES) slab = this.#slab = { buffer: Buffer.allocUnsafeSlow(SLAB_BYTES), used: 0, live: 0 }
    const start = slab.used
    value.copy(slab.buffer, start)
    // 8-byte aligned: a vector's floats can be read in place (Float64Array needs it).
    slab.used = (start + value.length + 7) & ~7
    slab.live += value.length
    entry.value = slab.buffer.subarray(start, start + value.length)
    entry.slab = slab
  }

  #usageOf(layer: string): LayerUsage {
    let usage = this.#usage.get(layer)
    if (usage === undefined) this.#usage.set(layer, (usage = { entries: 0, bytes: 0, evictions: 0 }))
    return usage
  }
}

/**
 * `value` itself when it owns its memory, else a copy that does. A Buffer that is a view on a
 * larger allocation (a reply sliced out of a socket read by the Redis client, a small Buffer in
 * Node's shared 8 KiB pool) keeps all of that allocation alive while the entry lives, so the
 * store's byte bound would not bound memory (the soak saw external memory grow past twice the
 * bound). The copy costs one memcpy per stored entry, never per hit.
 */
function ownBuffer(value: Buffer): Buffer {
  if (value.byteOffset === 0 && value.buffer.byteLength === value.length) return value
  const own = Buffer.allocUnsafeSlow(value.length)
  value.copy(own)
  return own
}
