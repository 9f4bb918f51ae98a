/**
 * Finding each vector's text in an instance's `/api/embed` or `/api/embeddings` answer without
 * parsing the numbers: the vectors' arrays hold nothing but numbers, so their ends are found
 * with a native byte search, and only the small rest of the answer (model, counts, durations) is
 * parsed as JSON. The cache answers followers and partly cached batches with these texts, the
 * instance's own bytes, and reads the numbers later, off the answer's path.
 */

const OPEN = 0x5b // [
const CLOSE = 0x5d // ]
const COMMA = 0x2c

const isSpace = (c: number | undefined): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09

/** Where the vectors of an answer are, and what its small rest says. */
export interface EmbeddingText {
  /** The whole answer. */
  readonly body: Buffer
  /** Start and end (exclusive) in `body` of each vector's array text, brackets included. */
  readonly ranges: Int32Array
  /** The answer's `prompt_eval_count` (0 when absent). */
  readonly promptTokens: number
  /** The answer's `load_duration` in ns (0 when absent). */
  readonly loadNs: number
}

const EMBED_KEY = Buffer.from('"embeddings"')
const EMBEDDING_KEY = Buffer.from('"embedding"')

/**
 * The vectors of an `/api/embed` answer (`embed`: `{"embeddings": [[...], ...], ...}`) or an
 * `/api/embeddings` one (`embeddings`: `{"embedding": [...]}`), expecting `count` of them.
 * Undefined when the answer is not of that shape.
 */
export function scanEmbeddingText(body: Buffer, family: 'embed' | 'embeddings', count: number): EmbeddingText | undefined {
  const key = family === 'embed' ? EMBED_KEY : EMBEDDING_KEY
  const at = body.indexOf(key)
  if (at < 0) return undefined
  let i = at + key.length
  while (isSpace(body[i])) i++
  if (body[i] !== 0x3a) return undefined // :
  i++
  while (isSpace(body[i])) i++
  const listStart = i
  const ranges = new Int32Array(count * 2)
  let listEnd: number
  if (family === 'embeddings') {
    if (count !== 1 || body[i] !== OPEN) return undefined
    const close = body.indexOf(CLOSE, i)
    if (close < 0) return undefined
    ranges[0] = i
    ranges[1] = close + 1
    listEnd = close + 1
  } else {
    if (body[i] !== OPEN) return undefined
    i++
    let n = 0
    for (;;) {
      while (isSpace(body[i])) i++
      if (body[i] === CLOSE && n === 0) break
      if (body[i] !== OPEN || n === count) return undefined
      // A vector's array holds numbers only: its end is the next ']' (parsing checks the rest).
      const close = body.indexOf(CLOSE, i)
      if (close < 0) return undefined
      ranges[2 * n] = i
      ranges[2 * n + 1] = close + 1
      n++
      i = close + 1
      while (isSpace(body[i])) i++
      if (body[i] === COMMA) {
        i++
        continue
      }
      if (body[i] === CLOSE) break
      return undefined
    }
    if (n !== count) return undefined
    listEnd = i + 1
  }
  // The rest, with the vectors left out, must be the JSON object it looks like: this also proves
  // that the key found is the answer's own field, not text inside some string before it.
  let rest: unknown
  try {
    rest = JSON.parse(`${body.toString('utf8', 0, listStart)}[]${body.toString('utf8', listEnd)}`)
  } catch {
    return undefined
  }
  if (rest === null || typeof rest !== 'object' || Array.isArray(rest)) return undefined
  const fields = rest as Record<string, unknown>
  const field = fields[family === 'embed' ? 'embeddings' : 'embedding']
  if (!Array.isArray(field) || field.length !== 0) return undefined
  return {
    body,
    ranges,
    promptTokens: typeof fields.prompt_eval_count === 'number' && fields.prompt_eval_count > 0 ? fields.prompt_eval_count : 0,
    loadNs: typeof fields.load_duration === 'number' ? fields.load_duration : 0,
  }
}
