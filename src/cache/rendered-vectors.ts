import { LRUCache } from 'lru-cache'
import type { StoredVector } from './vector-codec.js'

/** What a rendering costs besides its two buffers (key, objects, LRU slots), in bytes. */
const RENDERING_OVERHEAD_BYTES = 256

interface Rendering {
  /** The stored form the text was rendered from: a rendering serves only that value. */
  readonly source: Buffer
  readonly json: Buffer
}

/**
 * The JSON text of hot cached vectors, kept so a hit copies bytes instead of rendering 768
 * numbers. Bounded in bytes (its share of the memory tier's bound); cold vectors are rendered
 * per hit. A vector fresh from an instance answers with the instance's own text.
 */
export class RenderedVectors {
  readonly #lru: LRUCache<string, Rendering> | undefined

  /** `maxBytes` 0 keeps nothing: every hit renders. */
  constructor(maxBytes: number) {
    this.#lru =
      maxBytes > 0
        ? new LRUCache<string, Rendering>({ maxSize: maxBytes, sizeCalculation: (r) => r.json.length + r.source.length + RENDERING_OVERHEAD_BYTES })
        : undefined
  }

  /** The JSON text of `vector`, stored under `key`. */
  json(key: string, vector: StoredVector): Buffer {
    if (vector.text !== undefined || this.#lru === undefined || vector.source === undefined) return vector.json()
    const hit = this.#lru.get(key)
    if (hit !== undefined && hit.source.equals(vector.source)) return hit.json
    const json = vector.json()
    // A copy: the stored form is a view on one of the memory store's slabs, and a rendering kept
    // for a hot vector must not keep a whole slab alive after the entry moved or went.
    const source = Buffer.allocUnsafeSlow(vector.source.length)
    vector.source.copy(source)
    this.#lru.set(key, { source, json })
    return json
  }

  /** Bytes held. */
  get bytes(): number {
    return this.#lru?.calculatedSize ?? 0
  }

  clear(): void {
    this.#lru?.clear()
  }
}
