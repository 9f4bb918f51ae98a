/**
 * A stored generation, independent of how it was asked for: the content pieces in order and the
 * final chunk (done_reason, context, counts, durations). It renders as Ollama's NDJSON stream or
 * as its one-object answer, so a streamed answer serves later non-streamed requests and the
 * other way round.
 *
 * Replayed answers keep everything the instance said (text, thinking, tool calls, context, token
 * counts and the original durations) except `model`, which echoes the request as Ollama does,
 * and `created_at`, which is the time of the replay.
 */

const KIND_ANSWER = 3
/** Done reasons of a complete generation; `load`/`unload` and anything else are never stored. */
const COMPLETE: ReadonlySet<unknown> = new Set(['stop', 'length'])

type Json = Record<string, unknown>

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v)

/** The fields of an object as JSON without its braces (`"a":1,"b":2`), or '' when empty. */
function inner(value: Json): string {
  const text = JSON.stringify(value)
  return text.length <= 2 ? '' : text.slice(1, -1)
}

/** One generation, ready to be replayed in either shape. */
export class AnswerRecord {
  readonly shape: 'generate' | 'chat'
  /** Each content chunk minus `model`, `created_at` and `done`. */
  readonly pieces: readonly Json[]
  /** The final chunk minus `model` and `created_at`, with empty content. */
  readonly final: Json
  #streamInners: string[] | undefined
  #finalInner: string | undefined
  #wholeInner: string | undefined

  constructor(shape: 'generate' | 'chat', pieces: readonly Json[], final: Json) {
    this.shape = shape
    this.pieces = pieces
    this.final = final
  }

  /**
   * From an instance's answer: NDJSON lines (streamed) or one JSON object. Undefined when it must
   * not be stored: an error line, no final chunk, or a done_reason other than stop or length.
   */
  static fromAnswer(shape: 'generate' | 'chat', body: string, streamed: boolean): AnswerRecord | undefined {
    try {
      if (!streamed) {
        const obj: unknown = JSON.parse(body)
        if (!isObject(obj) || obj.done !== true || !COMPLETE.has(obj.done_reason) || 'error' in obj) return undefined
        return AnswerRecord.#split(shape, obj)
      }
      const pieces: Json[] = []
      let final: Json | undefined
      for (const line of body.split('\n')) {
        if (line.trim() === '') continue
        if (final !== undefined) return undefined // nothing may follow the final chunk
        const obj: unknown = JSON.parse(line)
        if (!isObject(obj) || 'error' in obj) return undefined
        const { model: _m, created_at: _c, ...rest } = obj
        if (rest.done === true) {
          final = rest
        } else {
          delete rest.done
          pieces.push(rest)
        }
      }
      if (final === undefined || !COMPLETE.has(final.done_reason)) return undefined
      return new AnswerRecord(shape, pieces, final)
    } catch {
      return undefined
    }
  }

  /** A one-object answer split into one content piece and the final chunk. */
  static #split(shape: 'generate' | 'chat', obj: Json): AnswerRecord {
    const { model: _m, created_at: _c, ...rest } = obj
    const piece: Json = {}
    const final: Json = {}
    for (const k in rest) {
      const v = rest[k]
      if (shape === 'generate' && k === 'response') {
        piece.response = v
        final.response = ''
      } else if (shape === 'generate' && (k === 'thinking' || k === 'tool_calls')) {
        piece[k] = v
      } else if (shape === 'chat' && k === 'message' && isObject(v)) {
        piece.message = v
        final.message = { role: v.role ?? 'assistant', content: '' }
      } else if (k === 'logprobs') {
        piece.logprobs = v
      } else {
        final[k] = v
      }
    }
    return new AnswerRecord(shape, [piece], final)
  }

  /** Decodes a stored value; undefined when it is not an answer record. */
  static decode(value: Buffer): AnswerRecord | undefined {
    if (value[0] !== KIND_ANSWER) return undefined
    try {
      const { s, p, f } = JSON.parse(value.toString('utf8', 1)) as { s: 'generate' | 'chat'; p: Json[]; f: Json }
      return new AnswerRecord(s, p, f)
    } catch {
      return undefined
    }
  }

  encode(): Buffer {
    const json = JSON.stringify({ s: this.shape, p: this.pieces, f: this.final })
    const out = Buffer.allocUnsafe(1 + Buffer.byteLength(json))
    out[0] = KIND_ANSWER
    out.write(json, 1, 'utf8')
    return out
  }

  /** The NDJSON stream: one line per piece, then the final chunk. */
  stream(modelJson: string, createdAt: string): string {
    this.#streamInners ??= this.pieces.map(inner)
    this.#finalInner ??= inner(this.final)
    const head = `{"model":${modelJson},"created_at":"${createdAt}"`
    let out = ''
    for (const piece of this.#streamInners) out += `${head}${piece === '' ? '' : ','}${piece},"done":false}\n`
    return `${out}${head}${this.#finalInner === '' ? '' : ','}${this.#finalInner}}\n`
  }

  /** The one-object answer: pieces merged into the final chunk. */
  whole(modelJson: string, createdAt: string): string {
    this.#wholeInner ??= inner(this.#merge())
    return `{"model":${modelJson},"created_at":"${createdAt}"${this.#wholeInner === '' ? '' : ','}${this.#wholeInner}}`
  }

  #merge(): Json {
    let text = ''
    let thinking = ''
    let toolCalls: unknown[] | undefined
    let logprobs: unknown[] | undefined
    let role: unknown
    let images: unknown
    for (const piece of this.pieces) {
      const source = this.shape === 'chat' && isObject(piece.message) ? piece.message : piece
      const content = this.shape === 'chat' ? source.content : source.response
      if (typeof content === 'string') text += content
      if (typeof source.thinking === 'string') thinking += source.thinking
      if (Array.isArray(source.tool_calls)) (toolCalls ??= []).push(...(source.tool_calls as unknown[]))
      if (Array.isArray(piece.logprobs)) (logprobs ??= []).push(...(piece.logprobs as unknown[]))
      if (this.shape === 'chat' && isObject(piece.message)) {
        role ??= piece.message.role
        images ??= piece.message.images
      }
    }
    const out: Json = {}
    for (const k in this.final) {
      if (this.shape === 'generate' && k === 'response') {
        out.response = text
        if (thinking !== '') out.thinking = thinking
        if (toolCalls !== undefined) out.tool_calls = toolCalls
      } else if (this.shape === 'chat' && k === 'message') {
        const message: Json = { role: role ?? 'assistant', content: text }
        if (thinking !== '') message.thinking = thinking
        if (toolCalls !== undefined) message.tool_calls = toolCalls
        if (images !== undefined) message.images = images
        out.message = message
      } else {
        out[k] = this.final[k]
      }
    }
    if (this.shape === 'generate' && !('response' in out)) out.response = text
    if (this.shape === 'chat' && !('message' in out)) out.message = { role: role ?? 'assistant', content: text }
    if (logprobs !== undefined) out.logprobs = logprobs
    return out
  }
}
