/**
 * Reading an instance's embedding answer (`/api/embed`, `/api/embeddings`, `/v1/embeddings`,
 * floats or base64) into one stored vector per input, each with its share of the prompt tokens.
 * Ollama's own answers are only cut into each vector's text here (the numbers are read when the
 * vector is stored); OpenAI's are parsed whole.
 */
import type { VectorPlan } from './cache-policy.js'
import { scanEmbeddingText } from './embedding-text.js'
import { StoredVector } from './vector-codec.js'

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

/**
 * The vectors of an instance's embedding answer, in the order of `sent`, each with its share of
 * the prompt tokens; undefined when the answer is not what was asked for.
 */
export function parseVectors(
  plan: VectorPlan,
  body: Buffer | undefined,
  sent: readonly string[],
): { vectors: StoredVector[]; loadNs: number } | undefined {
  if (body === undefined) return undefined
  if (plan.family === 'embed' || plan.family === 'embeddings') {
    const text = scanEmbeddingText(body, plan.family, sent.length)
    if (text === undefined) return undefined
    const shares = tokenShares(sent, text.promptTokens)
    const vectors: StoredVector[] = new Array<StoredVector>(sent.length)
    for (let i = 0; i < sent.length; i++) {
      const slice = body.subarray(text.ranges[2 * i], text.ranges[2 * i + 1])
      // /api/embeddings answers float64 numbers (and its tokens are not reported).
      vectors[i] = plan.family === 'embed' ? StoredVector.fromText(slice, shares[i]!, true) : StoredVector.fromText(slice, 0, false)
    }
    return { vectors, loadNs: plan.family === 'embed' ? text.loadNs : 0 }
  }
  let obj: unknown
  try {
    obj = JSON.parse(body.toString('utf8'))
  } catch {
    return undefined
  }
  if (!isObject(obj)) return undefined
  const shares = tokenShares(sent, isObject(obj.usage) ? obj.usage.prompt_tokens : 0)
  const numbers = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number')
  const data = obj.data
  if (!Array.isArray(data) || data.length !== sent.length) return undefined
  const vectors: StoredVector[] = new Array<StoredVector>(sent.length)
  for (const item of data) {
    if (!isObject(item) || typeof item.index !== 'number' || item.index < 0 || item.index >= sent.length) return undefined
    const share = shares[item.index]!
    if (typeof item.embedding === 'string') {
      const bytes = Buffer.from(item.embedding, 'base64')
      if (bytes.length === 0 || bytes.length % 4 !== 0) return undefined
      const f32 = new Float32Array(bytes.length / 4)
      Buffer.from(f32.buffer).set(bytes)
      vectors[item.index] = StoredVector.fromFloat32(f32, share)
    } else if (numbers(item.embedding)) {
      vectors[item.index] = StoredVector.fromNumbers(item.embedding, share, true)
    } else {
      return undefined
    }
  }
  for (const v of vectors) if (v === undefined) return undefined
  return { vectors, loadNs: 0 }
}

/**
 * Splits a batch's prompt-token count over its items, in proportion to their length: the
 * instance reports one total, and an assembled answer adds up the items' shares.
 */
function tokenShares(items: readonly string[], total: unknown): number[] {
  const count = typeof total === 'number' && total > 0 ? total : 0
  if (items.length === 1) return [count]
  let length = 0
  for (const item of items) length += item.length
  const shares: number[] = []
  let given = 0
  for (let i = 0; i < items.length; i++) {
    const share = i === items.length - 1 ? count - given : Math.round((count * items[i]!.length) / Math.max(1, length))
    shares.push(Math.max(0, share))
    given += share
  }
  return shares
}
