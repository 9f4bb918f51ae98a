/**
 * /api/generate, /api/chat and their OpenAI twins (/v1/chat/completions, /v1/completions): one
 * validation and slot queue, four wire formats. Streams are NDJSON (Ollama) or SSE (OpenAI), one
 * chunk per token with the token's delay before it; the done chunk carries Ollama's timings.
 */
import { makeAnswer, type Answer } from './deterministic-answers.js'
import type { FakeContext } from './fake-context.js'
import { NDJSON_TYPE, SSE_TYPE, type FakeExchange } from './fake-exchange.js'
import { bindJSON } from './go-binding.js'
import { isRecord, str } from './json-values.js'
import { keepAliveMs } from './model-catalog.js'

export type CompletionKind = 'generate' | 'chat' | 'chat.completion' | 'text_completion'

export async function answerCompletion(ctx: FakeContext, ex: FakeExchange, kind: CompletionKind): Promise<void> {
  const openai = kind === 'chat.completion' || kind === 'text_completion'
  const chatLike = kind === 'chat' || kind === 'chat.completion'
  const struct = {
    generate: 'api.GenerateRequest', chat: 'api.ChatRequest',
    'chat.completion': 'openai.ChatCompletionRequest', text_completion: 'openai.CompletionRequest',
  }[kind]
  const body = bindJSON(ex, struct, {
    model: 'string', prompt: 'string', system: 'string', suffix: 'string', messages: 'array',
    options: 'object', stream: 'boolean', max_tokens: 'number',
  })
  if (body === undefined) return
  const name = str(body.model)
  if (name === '') return ex.sendError(400, 'model is required')
  const m = ctx.catalog.find(name)
  if (m === undefined) return ex.sendError(404, `model ${JSON.stringify(name)} not found, try pulling it first`)
  const messages = Array.isArray(body.messages) ? body.messages : []
  const input = chatLike ? messages.map((msg) => (isRecord(msg) ? str(msg.content) : '')).join('\n') : str(body.prompt)
  // Ollama answers load/unload with one JSON object even when stream is true (c.JSON in routes.go).
  const loadOnly = !openai && (chatLike ? messages.length === 0 : input === '')
  const loadReply = (doneReason: 'load' | 'unload'): object => kind === 'chat'
    ? { model: name, created_at: ctx.clock.createdAt(), message: { role: 'assistant', content: '' }, done_reason: doneReason, done: true }
    : { model: name, created_at: ctx.clock.createdAt(), response: '', done: true, done_reason: doneReason }
  if (loadOnly && keepAliveMs(body.keep_alive) === 0) {
    ctx.catalog.unload(m)
    return ex.sendJSON(200, loadReply('unload'))
  }
  if (!openai && (body.think === true || typeof body.think === 'string')) {
    return ex.sendError(400, `${JSON.stringify(name)} does not support thinking`)
  }
  if (m.embedding) return ex.sendError(400, `${JSON.stringify(name)} does not support ${chatLike ? 'chat' : 'generate'}`)

  await ctx.slotsFor(m.name).run(ex, async () => {
    ctx.catalog.load(m, body.keep_alive)
    if (loadOnly) return ex.sendJSON(200, loadReply('load'))
    await ex.evalPrompt()
    const limit = openai ? body.max_tokens : isRecord(body.options) ? body.options.num_predict : undefined
    const count = typeof limit === 'number' && limit >= 0 ? Math.min(limit, ctx.tokens) : ctx.tokens
    const answer = makeAnswer(m, body, input, count, ctx.tokens)
    if (openai) {
      const streamOptions = isRecord(body.stream_options) ? body.stream_options : {}
      await answerOpenAI(ctx, ex, kind, name, answer, body.stream === true, streamOptions.include_usage === true)
    } else {
      await answerOllama(ctx, ex, kind, name, answer, body.stream !== false)
    }
  })
}

/** Ollama's NDJSON chunks (or one object for stream:false), ending with the done chunk and its metrics. */
async function answerOllama(ctx: FakeContext, ex: FakeExchange, kind: CompletionKind, model: string, answer: Answer, stream: boolean): Promise<void> {
  const evalStartNs = process.hrtime.bigint()
  const promptNs = ex.promptDelayMs > 0 ? Math.round(ex.promptDelayMs * 1e6) : answer.promptTokens * 120_000
  const evalNs = Math.round(answer.tokens.length * ex.tokenDelayMs * 1e6)
  const chunk = (content: string, done: boolean): object => kind === 'chat'
    ? { model, created_at: ctx.clock.createdAt(), message: { role: 'assistant', content }, done }
    : { model, created_at: ctx.clock.createdAt(), response: content, done }
  const final = (content: string): object => ({
    ...chunk(content, true),
    done_reason: answer.doneReason,
    ...(kind === 'generate' ? { context: answer.context } : {}),
    total_duration: ctx.clock.duration(process.hrtime.bigint() - ex.startedNs, promptNs + evalNs),
    load_duration: ctx.clock.duration(ex.slotNs - ex.startedNs, 0),
    prompt_eval_count: answer.promptTokens,
    prompt_eval_duration: promptNs,
    eval_count: answer.tokens.length,
    eval_duration: ctx.clock.duration(process.hrtime.bigint() - evalStartNs, evalNs),
  })
  if (!stream) {
    await ex.pace(answer.tokens.length)
    return ex.sendJSON(200, final(answer.tokens.join('')))
  }
  ex.beginStream(NDJSON_TYPE)
  for (const token of answer.tokens) {
    await ex.pace()
    await ex.write(JSON.stringify(chunk(token, false)) + '\n')
  }
  await ex.write(JSON.stringify(final('')) + '\n')
  ex.res.end()
}

/** OpenAI's chat.completion/text_completion object, or SSE chunks ending with `data: [DONE]`. */
async function answerOpenAI(
  ctx: FakeContext, ex: FakeExchange, kind: CompletionKind, model: string, answer: Answer, stream: boolean, includeUsage: boolean,
): Promise<void> {
  const chat = kind === 'chat.completion'
  const id = `${chat ? 'chatcmpl' : 'cmpl'}-${ctx.nextId()}`
  const { promptTokens, tokens } = answer
  const usage = { prompt_tokens: promptTokens, completion_tokens: tokens.length, total_tokens: promptTokens + tokens.length }
  const object = (type: string, choices: object[], extra: object = {}): object =>
    ({ id, object: type, created: ctx.clock.unixSeconds(), model, system_fingerprint: 'fp_ollama', choices, ...extra })
  if (!stream) {
    await ex.pace(answer.tokens.length)
    const text = answer.tokens.join('')
    const choice = chat
      ? { index: 0, message: { role: 'assistant', content: text }, finish_reason: answer.doneReason }
      : { text, index: 0, finish_reason: answer.doneReason }
    return ex.sendJSON(200, object(kind, [choice], { usage }))
  }
  const event = (value: object | string): string => `data: ${typeof value === 'string' ? value : JSON.stringify(value)}\n\n`
  const chunk = (content: string, finish: string | null): object => chat
    ? object('chat.completion.chunk', [{ index: 0, delta: { role: 'assistant', content }, finish_reason: finish }])
    : object('text_completion', [{ text: content, index: 0, finish_reason: finish }])
  ex.beginStream(SSE_TYPE)
  for (const token of answer.tokens) {
    await ex.pace()
    await ex.write(event(chunk(token, null)))
  }
  await ex.write(event(chunk('', answer.doneReason)))
  if (includeUsage) await ex.write(event(object(chat ? 'chat.completion.chunk' : 'text_completion', [], { usage })))
  await ex.write(event('[DONE]'))
  ex.res.end()
}
