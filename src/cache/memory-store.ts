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
 * Memory an entry takes besides its value's bytes and its key's characters: the value's Buffer
 * and backing store, the entry and its decoded view, the LRU's slots and the TTL bookkeeping
 * (measured: a million 768-d vectors take about this much each beyond 3,080 + the key).
 */
const ENTRY_OVERHEAD_BYTES = 320

interface MemoryEntry extends CacheEntry {
  readonly layer: string
  readonly size: number
}

/**
 * The in-memory store: an LRU bounded in bytes, with a TTL per entry. Entries keep their decoded
 * view, so a hit costs one map lookup and no decoding.
 */
export class MemoryStore implements CacheStore {
  readonly kind = 'memory'
  readonly #lru: LRUCache<string, MemoryEntry>
  readonly #maxEntryBytes: number
  readonly #layerOf: (key: string) => string
  readonly #usage = new Map<string, LayerUsage>()

  constructor(options: MemoryStoreOptions) {
    this.#maxEntryBytes = Math.min(options.maxEntryBytes, options.maxBytes)
    this.#layerOf = options.layerOf
    this.#lru = new LRUCache<string, MemoryEntry>({
      maxSize: Math.max(1, options.maxBytes),
      sizeCalculation: (entry) => entry.size,
      ttlAutopurge: false,
      dispose: (entry, _key, reason) => {
        const usage = this.#usageOf(entry.layer)
        usage.entries--
        usage.bytes -= entry.size
        if (reason === 'evict') usage.evictions++
      },
    })
  }

  get(key: string): CacheEntry | undefined {
    return this.#lru.get(key)
  }

  /** Stores at once and returns the entry held (undefined when too large). */
  put(key: string, value: Buffer, ttlMs: number, view?: unknown): CacheEntry | undefined {
    const size = value.length + key.length + ENTRY_OVERHEAD_BYTES
    if (size > this.#maxEntryBytes || ttlMs <= 0) return undefined
    const entry: MemoryEntry = { value: ownBuffer(value), view, layer: this.#layerOf(key), size }
    this.#lru.set(key, entry, { ttl: ttlMs })
    if (this.#lru.peek(key) !== entry) return undefined
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
    return Promise.resolve()
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
