/**
 * One embedding answer from the answers to the parts of a batch, in the shape the client asked
 * for, as one instance would have answered the whole batch:
 *
 * - `/api/embed`: the parts' vectors in input order, each the instance's own text (cut out with
 *   cache/embedding-text.ts, no number parsed or rendered again, so a vector is byte for byte what
 *   the instance sent); `prompt_eval_count` and `load_duration` summed over the parts;
 *   `total_duration` the batch's time in corral, as corral's assembled cache answers give it.
 * - `/v1/embeddings`: the parts' `data` items in input order, `index` counted over the batch, the
 *   parts' `usage` summed. Items are parsed and written again; a float32 text from Ollama (Go's
 *   shortest form) reads and prints back unchanged, a base64 one is a string.
 */
import { scanEmbeddingText } from '../cache/embedding-text.js'

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)
const COMMA = Buffer.from(',')

/** One part's answer (status 200, read whole) and how many inputs it was sent. */
export interface PartAnswer {
  readonly body: Buffer
  readonly inputs: number
}

/**
 * The joined answer, or a reason why the part `index` cannot be joined (not the shape asked for,
 * or not one vector per input).
 */
export function joinEmbeddings(
  family: 'embed' | 'openai',
  model: string | undefined,
  parts: readonly PartAnswer[],
  totalNs: number,
): Buffer | { unusable: number } {
  return family === 'embed' ? joinEmbed(model, parts, totalNs) : joinOpenAI(model, parts)
}

function joinEmbed(model: string | undefined, parts: readonly PartAnswer[], totalNs: number): Buffer | { unusable: number } {
  const out: Buffer[] = [Buffer.from(`{"model":${JSON.stringify(model ?? '')},"embeddings":[`)]
  let loadNs = 0
  let tokens = 0
  for (let p = 0; p < parts.length; p++) {
    const { body, inputs } = parts[p]!
    const text = scanEmbeddingText(body, 'embed', inputs)
    if (text === undefined) return { unusable: p }
    for (let i = 0; i < inputs; i++) {
      if (p > 0 || i > 0) out.push(COMMA)
      out.push(body.subarray(text.ranges[2 * i], text.ranges[2 * i + 1]))
    }
    loadNs += text.loadNs
    tokens += text.promptTokens
  }
  out.push(Buffer.from(`],"total_duration":${Math.round(totalNs)},"load_duration":${loadNs},"prompt_eval_count":${tokens}}`))
  return Buffer.concat(out)
}

function joinOpenAI(model: string | undefined, parts: readonly PartAnswer[]): Buffer | { unusable: number } {
  const data: unknown[] = []
  let promptTokens = 0
  let totalTokens = 0
  for (let p = 0; p < parts.length; p++) {
    const { body, inputs } = parts[p]!
    let obj: unknown
    try {
      obj = JSON.parse(body.toString('utf8'))
    } catch {
      return { unusable: p }
    }
    if (!isObject(obj) || !Array.isArray(obj.data) || obj.data.length !== inputs) return { unusable: p }
    const offset = data.length
    const items: unknown[] = new Array<unknown>(inputs)
    for (const item of obj.data) {
      if (!isObject(item) || typeof item.index !== 'number' || item.index < 0 || item.index >= inputs || items[item.index] !== undefined) {
        return { unusable: p }
      }
      items[item.index] = { ...item, index: offset + item.index }
    }
    data.push(...items)
    const usage = isObject(obj.usage) ? obj.usage : {}
    if (typeof usage.prompt_tokens === 'number') promptTokens += usage.prompt_tokens
    if (typeof usage.total_tokens === 'number') totalTokens += usage.total_tokens
  }
  return Buffer.from(
    JSON.stringify({ object: 'list', data, model: model ?? '', usage: { prompt_tokens: promptTokens, total_tokens: totalTokens } }),
  )
}
