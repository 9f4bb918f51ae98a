/**
 * What the fake "model" says: words and vectors that are pure functions of the model and the
 * request, so two fakes serving the same model give byte-identical text and vectors (what cache
 * and fail-over tests compare), with nothing kept between requests.
 */
import { createHash } from 'node:crypto'
import type { ModelEntry } from './model-catalog.js'
import { isRecord, stableStringify } from './json-values.js'

const VOCAB = [
  'the', 'llama', 'grazes', 'on', 'a', 'quiet', 'hill', 'while', 'clouds', 'drift', 'over', 'stone',
  'fences', 'and', 'wool', 'grows', 'thick', 'in', 'cold', 'wind', 'herders', 'sing', 'old', 'songs',
  'about', 'rivers', 'that', 'carve', 'deep', 'valleys', 'through', 'red', 'rock', 'under', 'bright',
  'stars', 'each', 'night', 'brings', 'frost', 'to', 'green', 'grass', 'near', 'the', 'corral',
] as const

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex')
}

/** Ollama's token count, roughly: four characters a token. */
export function countTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4))
}

export interface Answer { tokens: string[]; doneReason: 'stop' | 'length'; promptTokens: number; context: number[] }

/**
 * The answer to a completion: words picked by hashing (model, request minus fields that only
 * change the wire shape). Token i does not depend on the count, so a num_predict-limited answer is
 * a prefix of the full one.
 */
export function makeAnswer(m: ModelEntry, body: Record<string, unknown>, input: string, count: number, natural: number): Answer {
  const request: Record<string, unknown> = { ...body, model: m.name }
  for (const k of ['stream', 'stream_options', 'keep_alive', 'max_tokens']) delete request[k]
  if (isRecord(request.options)) {
    const options = { ...request.options }
    delete options.num_predict
    request.options = options
  }
  const seed = sha256(stableStringify(request))
  const tokens: string[] = []
  const context: number[] = []
  const promptTokens = countTokens(input) + 10 // plus the template's own tokens
  for (let i = 0; i < promptTokens + count; i++) {
    const h = createHash('sha256').update(`${seed}:${i}`).digest()
    context.push(h.readUInt32LE(4) % 128_000)
    if (i >= count) continue
    const word = VOCAB[h.readUInt32LE(0) % VOCAB.length] ?? 'the'
    tokens.push(i === 0 ? word.charAt(0).toUpperCase() + word.slice(1) : ` ${word}`)
  }
  return { tokens, doneReason: count < natural ? 'length' : 'stop', promptTokens, context }
}

/** The model's raw (unnormalised) float32 output for a text: deterministic in (model, text). */
export function rawEmbedding(m: ModelEntry, text: string): number[] {
  const out: number[] = []
  for (let block = 0; out.length < m.dims; block++) {
    const h = createHash('sha256').update(`${m.name}\0${text}\0${block}`).digest()
    for (let i = 0; i < 32 && out.length < m.dims; i += 4) out.push(Math.fround(h.readInt32LE(i) / 2 ** 31))
  }
  return out
}

/** Ollama's normalize() in float32 arithmetic. */
function normalize(v: number[]): number[] {
  let sum = 0
  for (const x of v) sum = Math.fround(sum + Math.fround(x * x))
  const norm = Math.fround(1 / Math.max(Math.sqrt(sum), 1e-12))
  return v.map((x) => Math.fround(x * norm))
}

/** /api/embed's vector: normalised, then truncated to `dimensions` and normalised again. */
export function embedding(m: ModelEntry, text: string, dimensions: number): number[] {
  const v = normalize(rawEmbedding(m, text))
  return dimensions > 0 && dimensions < v.length ? normalize(v.slice(0, dimensions)) : v
}

/** Go encodes float32 with the fewest digits that round-trip at 32 bits; so does this. */
export function float32Shortest(f: number): number {
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(f.toPrecision(digits))
    if (Math.fround(candidate) === f) return candidate
  }
  return f
}
