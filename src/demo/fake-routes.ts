/**
 * The fake's route table, matched like gin's router: exact paths plus two parameterised ones,
 * and gin's own plain-text 404/405 before any handler runs.
 */
import { answerCompletion } from './completion-routes.js'
import { answerEmbed } from './embedding-routes.js'
import type { FakeContext } from './fake-context.js'
import { TEXT_TYPE, type FakeExchange } from './fake-exchange.js'
import * as models from './model-routes.js'

type Handler = (ctx: FakeContext, ex: FakeExchange) => void | Promise<void>
type Route = Partial<Record<'GET' | 'HEAD' | 'POST' | 'DELETE', Handler>>

const running: Handler = (_ctx, ex) => ex.send(200, TEXT_TYPE, Buffer.from('Ollama is running'))
const version: Handler = (ctx, ex) => ex.sendJSON(200, { version: ctx.version })
const blob: Route = { HEAD: models.headBlob, POST: models.postBlob }

const ROUTES: ReadonlyMap<string, Route> = new Map<string, Route>([
  ['/', { GET: running, HEAD: running }],
  ['/api/version', { GET: version, HEAD: version }],
  ['/api/tags', { GET: models.tags, HEAD: models.tags }],
  ['/api/ps', { GET: models.ps }],
  ['/api/show', { POST: models.show }],
  ['/api/generate', { POST: (ctx, ex) => answerCompletion(ctx, ex, 'generate') }],
  ['/api/chat', { POST: (ctx, ex) => answerCompletion(ctx, ex, 'chat') }],
  ['/api/embed', { POST: (ctx, ex) => answerEmbed(ctx, ex, 'embed') }],
  ['/api/embeddings', { POST: (ctx, ex) => answerEmbed(ctx, ex, 'embeddings') }],
  ['/api/pull', { POST: models.pull }],
  ['/api/push', { POST: models.push }],
  ['/api/create', { POST: models.create }],
  ['/api/copy', { POST: models.copy }],
  ['/api/delete', { DELETE: models.deleteModel }],
  ['/api/blobs/:param', blob],
  ['/v1/chat/completions', { POST: (ctx, ex) => answerCompletion(ctx, ex, 'chat.completion') }],
  ['/v1/completions', { POST: (ctx, ex) => answerCompletion(ctx, ex, 'text_completion') }],
  ['/v1/embeddings', { POST: (ctx, ex) => answerEmbed(ctx, ex, 'openai') }],
  ['/v1/models', { GET: models.openaiModelList }],
  ['/v1/models/:param', { GET: models.openaiModelInfo }],
])

/** Answers one exchange by its route, or with gin's 404/405. */
export async function route(ctx: FakeContext, ex: FakeExchange): Promise<void> {
  let found = ROUTES.get(ex.pathname)
  const param = /^\/(api\/blobs|v1\/models)\/([^/]+)$/.exec(ex.pathname)
  if (found === undefined && param !== null) {
    found = ROUTES.get(`/${param[1]}/:param`)
    ex.param = decodeURIComponent(param[2] ?? '')
  }
  // gin's router answers these itself, in plain text, before any handler or middleware.
  if (found === undefined) return ex.send(404, TEXT_TYPE, Buffer.from('404 page not found'))
  const handler = found[ex.req.method as keyof Route]
  if (handler === undefined) return ex.send(405, TEXT_TYPE, Buffer.from('405 method not allowed'))
  await handler(ctx, ex)
}
