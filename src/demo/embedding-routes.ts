/**
 * /api/embed (normalised float32 vectors, printed with Go's shortest float32 text), the legacy
 * /api/embeddings (one raw vector) and OpenAI's /v1/embeddings (floats or base64).
 */
import { countTokens, embedding, float32Shortest, rawEmbedding } from './deterministic-answers.js'
import type { FakeContext } from './fake-context.js'
import { JSON_TYPE, type FakeExchange } from './fake-exchange.js'
import { bindJSON } from './go-binding.js'
import { str } from './json-values.js'
import type { ModelEntry } from './model-catalog.js'
import type { EmbeddingPool } from './embedding-pool.js'

export type EmbedKind = 'embed' | 'embeddings' | 'openai'

export async function answerEmbed(ctx: FakeContext, ex: FakeExchange, kind: EmbedKind): Promise<void> {
  const struct = kind === 'embed' ? 'api.EmbedRequest' : kind === 'embeddings' ? 'api.EmbeddingRequest' : 'openai.EmbedRequest'
  const body = bindJSON(ex, struct, { model: 'string', prompt: 'string', options: 'object', dimensions: 'number', truncate: 'boolean' })
  if (body === undefined) return
  const name = str(body.model)
  if (name === '') return ex.sendError(400, 'model is required')
  let inputs: string[] = []
  const raw = kind === 'embeddings' ? body.prompt : body.input
  if (typeof raw === 'string') {
    if (raw !== '') inputs = [raw]
  } else if (Array.isArray(raw) && raw.every((v) => typeof v === 'string')) {
    inputs = raw
  } else if (raw !== undefined && raw !== null) {
    return ex.sendError(400, 'invalid input type')
  }
  if (kind === 'openai' && inputs.length === 0) return ex.sendError(400, 'invalid input')
  const m = ctx.catalog.find(name)
  if (m === undefined) return ex.sendError(404, `model ${JSON.stringify(name)} not found, try pulling it first`)

  await ctx.slotsFor(m.name).run(ex, async () => {
    ctx.catalog.load(m, body.keep_alive)
    // An empty request only loads the model.
    if (inputs.length === 0) return ex.sendJSON(200, kind === 'embed' ? { model: name, embeddings: [] } : { embedding: [] })
    await ex.embedCost(inputs.length)
    const dims = typeof body.dimensions === 'number' ? body.dimensions : 0
    if (ctx.pool !== undefined && kind !== 'openai' && dims === 0) return sendPooled(ctx, ctx.pool, ex, kind, m, name, inputs)
    if (kind === 'embeddings') return ex.sendJSON(200, { embedding: rawEmbedding(m, inputs[0] ?? '') })
    const vectors = inputs.map((text) => embedding(m, text, dims))
    const promptTokens = inputs.reduce((n, text) => n + countTokens(text), 0)
    if (kind === 'embed') {
      const now = process.hrtime.bigint()
      return ex.sendJSON(200, {
        model: name, embeddings: vectors.map((v) => v.map(float32Shortest)),
        total_duration: ctx.clock.duration(now - ex.startedNs, ex.embedNominalNs(inputs.length)),
        load_duration: ctx.clock.duration(ex.slotNs - ex.startedNs, 0),
        prompt_eval_count: promptTokens,
      })
    }
    const base64 = str(body.encoding_format).toLowerCase() === 'base64'
    ex.sendJSON(200, {
      object: 'list',
      data: vectors.map((v, index) => ({
        object: 'embedding',
        embedding: base64 ? Buffer.from(Float32Array.from(v).buffer).toString('base64') : v.map(float32Shortest),
        index,
      })),
      model: name,
      usage: { prompt_tokens: promptTokens, total_tokens: promptTokens },
    })
  })
}

const COMMA = Buffer.from(',')

/** The same answer from the pool's rendered vectors, written as parts: no vector is rendered per request. */
function sendPooled(ctx: FakeContext, pool: EmbeddingPool, ex: FakeExchange, kind: 'embed' | 'embeddings', m: ModelEntry, name: string, inputs: readonly string[]): void {
  if (kind === 'embeddings') {
    return ex.send(200, JSON_TYPE, [Buffer.from('{"embedding":'), pool.text(m, inputs[0] ?? '', false), Buffer.from('}')])
  }
  const parts: Buffer[] = [Buffer.from(`{"model":${JSON.stringify(name)},"embeddings":[`)]
  let promptTokens = 0
  inputs.forEach((text, i) => {
    if (i > 0) parts.push(COMMA)
    parts.push(pool.text(m, text, true))
    promptTokens += countTokens(text)
  })
  const now = process.hrtime.bigint()
  const total = ctx.clock.duration(now - ex.startedNs, ex.embedNominalNs(inputs.length))
  const load = ctx.clock.duration(ex.slotNs - ex.startedNs, 0)
  parts.push(Buffer.from(`],"total_duration":${total},"load_duration":${load},"prompt_eval_count":${promptTokens}}`))
  ex.send(200, JSON_TYPE, parts)
}
