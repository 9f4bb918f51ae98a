/**
 * A stored `/v1/chat/completions` or `/v1/completions` answer: the instance's one-object JSON
 * answer, byte for byte. It is replayed as it is to non-streamed requests and rendered as the
 * SSE stream Ollama would send (one content chunk, the finish chunk, the usage chunk when
 * `stream_options.include_usage` asks for it, `data: [DONE]`) to streamed ones. A streamed answer
 * is stored as the one-object answer it adds up to, when it is plain text with a usage chunk
 * (anything else, tool calls or reasoning, is relayed and not stored).
 *
 * `id`, `created` and `system_fingerprint` are the original answer's.
 */

const KIND_BODY = 4
const COMPLETE: ReadonlySet<unknown> = new Set(['stop', 'length'])

type Json = Record<string, unknown>
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v)

export class OpenAIAnswer {
  /** The one-object answer, as the instance sent it (or as its stream adds up to). */
  readonly body: Buffer
  #parsed: Json | undefined
  #sse: [string | undefined, string | undefined] = [undefined, undefined]

  private constructor(body: Buffer) {
    this.body = body
  }

  /** From an instance's one-object answer; undefined unless every choice finished (stop/length). */
  static fromBody(body: Buffer): OpenAIAnswer | undefined {
    let obj: unknown
    try {
      obj = JSON.parse(body.toString('utf8'))
    } catch {
      return undefined
    }
    if (!isObject(obj) || !Array.isArray(obj.choices) || obj.choices.length === 0) return undefined
    for (const c of obj.choices) if (!isObject(c) || !COMPLETE.has(c.finish_reason)) return undefined
    const answer = new OpenAIAnswer(body)
    answer.#parsed = obj
    return answer
  }

  /** From an instance's SSE stream (`chat`: chat.completion chunks, else text_completion). */
  static fromStream(text: string, chat: boolean): OpenAIAnswer | undefined {
    let id: unknown
    let created: unknown
    let model: unknown
    let fingerprint: unknown
    let content = ''
    let finish: unknown
    let usage: unknown
    let done = false
    for (const event of text.split('\n\n')) {
      const line = event.trim()
      if (line === '') continue
      if (!line.startsWith('data: ') || done) return undefined
      const data = line.slice(6)
      if (data === '[DONE]') {
        done = true
        continue
      }
      let obj: unknown
      try {
        obj = JSON.parse(data)
      } catch {
        return undefined
      }
      if (!isObject(obj) || 'error' in obj || !Array.isArray(obj.choices)) return undefined
      id ??= obj.id
      created ??= obj.created
      model ??= obj.model
      fingerprint ??= obj.system_fingerprint
      if (obj.usage !== undefined && obj.usage !== null) usage = obj.usage
      if (obj.choices.length > 1) return undefined
      const choice: unknown = obj.choices[0]
      if (choice === undefined) continue
      if (!isObject(choice)) return undefined
      if (chat) {
        const delta = choice.delta
        if (!isObject(delta)) return undefined
        for (const k in delta) if (k !== 'role' && k !== 'content') return undefined // tool calls, reasoning
        if (typeof delta.content === 'string') content += delta.content
      } else if (typeof choice.text === 'string') {
        content += choice.text
      }
      if (choice.finish_reason !== null && choice.finish_reason !== undefined) finish = choice.finish_reason
    }
    if (!done || !COMPLETE.has(finish) || usage === undefined) return undefined
    const choice = chat
      ? { index: 0, message: { role: 'assistant', content }, finish_reason: finish }
      : { text: content, index: 0, finish_reason: finish }
    const whole = {
      id,
      object: chat ? 'chat.completion' : 'text_completion',
      created,
      model,
      system_fingerprint: fingerprint,
      choices: [choice],
      usage,
    }
    return OpenAIAnswer.fromBody(Buffer.from(JSON.stringify(whole)))
  }

  static decode(value: Buffer): OpenAIAnswer | undefined {
    return value[0] === KIND_BODY ? new OpenAIAnswer(value.subarray(1)) : undefined
  }

  encode(): Buffer {
    const out = Buffer.allocUnsafe(1 + this.body.length)
    out[0] = KIND_BODY
    this.body.copy(out, 1)
    return out
  }

  /** The SSE stream of this answer, rendered once per variant. */
  sse(includeUsage: boolean): string | undefined {
    const i = includeUsage ? 1 : 0
    const cached = this.#sse[i]
    if (cached !== undefined) return cached
    this.#parsed ??= JSON.parse(this.body.toString('utf8')) as Json
    const obj = this.#parsed
    const chat = obj.object === 'chat.completion'
    const choice: unknown = Array.isArray(obj.choices) ? obj.choices[0] : undefined
    if (!isObject(choice)) return undefined
    const message = isObject(choice.message) ? choice.message : {}
    const text = chat ? message.content : choice.text
    if (typeof text !== 'string') return undefined
    const head = { id: obj.id, object: chat ? 'chat.completion.chunk' : 'text_completion', created: obj.created, model: obj.model, system_fingerprint: obj.system_fingerprint }
    const chunk = (content: string, finish: unknown): Json =>
      chat
        ? { ...head, choices: [{ index: 0, delta: { role: message.role ?? 'assistant', content }, finish_reason: finish }] }
        : { ...head, choices: [{ text: content, index: 0, finish_reason: finish }] }
    let out = `data: ${JSON.stringify(chunk(text, null))}\n\n`
    out += `data: ${JSON.stringify(chunk('', choice.finish_reason))}\n\n`
    if (includeUsage) out += `data: ${JSON.stringify({ ...head, choices: [], usage: obj.usage })}\n\n`
    out += 'data: [DONE]\n\n'
    this.#sse[i] = out
    return out
  }
}
