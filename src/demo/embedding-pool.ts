/**
 * Vectors made once, for a fake that must cost little per embedding (a benchmark measures the
 * proxy in front, not the fake): each input picks one of `size` vectors by a cheap hash, so the
 * answer is still a deterministic function of (model, input), and the vector's JSON text is
 * rendered once. A real vector costs 24 SHA-256 and 768 shortest-float renderings; this costs one
 * FNV-1a pass over the input.
 */
import type { ModelEntry } from './model-catalog.js'
import { embedding, float32Shortest, rawEmbedding } from './deterministic-answers.js'

export class EmbeddingPool {
  readonly #size: number
  /** `normalised|raw` + model name -> the pool's vectors as JSON text. */
  readonly #texts = new Map<string, Buffer[]>()

  constructor(size: number) {
    this.#size = size
  }

  /** The JSON text of the vector for `input`: normalised (/api/embed) or raw (/api/embeddings). */
  text(m: ModelEntry, input: string, normalised: boolean): Buffer {
    const key = `${normalised ? 'n' : 'r'}|${m.name}`
    let texts = this.#texts.get(key)
    if (texts === undefined) {
      texts = Array.from({ length: this.#size }, (_, i) => {
        const v = normalised ? embedding(m, `pool ${i}`, 0).map(float32Shortest) : rawEmbedding(m, `pool ${i}`)
        return Buffer.from(JSON.stringify(v))
      })
      this.#texts.set(key, texts)
    }
    let h = 2166136261
    for (let i = 0; i < input.length; i++) h = Math.imul(h ^ input.charCodeAt(i), 16777619)
    return texts[(h >>> 0) % texts.length] ?? Buffer.from('[]')
  }
}
