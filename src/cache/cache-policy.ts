/**
 * Which requests the cache may answer or keep, and in which layer. Pure decisions on the parsed
 * request; nothing here touches a store.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { CacheConfig, CacheLayerName } from '../config/config.js'
import type { RouteName } from '../http/routes.js'
import type { KeyFamily } from './cache-key.js'

/** A generation request the cache handles: looked up as a whole, stored as an answer record. */
export interface AnswerPlan {
  readonly kind: 'answer'
  readonly layer: 'inference'
  readonly family: KeyFamily
  /** The client wants a stream (NDJSON, Ollama's default; SSE on /v1) rather than one JSON object. */
  readonly stream: boolean
  /** False with `Cache-Control: no-cache`: the answer is fetched, then stored. */
  readonly lookup: boolean
}

/** An embedding request: cached per input item. */
export interface VectorPlan {
  readonly kind: 'vectors'
  readonly layer: 'embedding' | 'chunk'
  readonly family: KeyFamily
  /** The input items, in request order. */
  readonly inputs: readonly string[]
  /** The body field holding the items (`input`, or `prompt` on `/api/embeddings`). */
  readonly field: 'input' | 'prompt'
  readonly lookup: boolean
}

/** Why a request the cache could handle is not cached (answered with `X-Corral-Cache: bypass`). */
export interface BypassPlan {
  readonly kind: 'bypass'
  readonly reason: string
}

/** What the cache does with one request; undefined: the route is never cached (no header). */
export type CachePlan = AnswerPlan | VectorPlan | BypassPlan

const bypass = (reason: string): BypassPlan => ({ kind: 'bypass', reason })
const NO_STORE = bypass('Cache-Control: no-store')
const DISABLED_LAYER = bypass('layer disabled')
const NOT_DETERMINISTIC = bypass('not deterministic (no seed, temperature not 0)')
const LOAD_REQUEST = bypass('empty prompt (load or unload)')
const POLICY_OFF = bypass('inference policy off')
const NOT_TEXT = bypass('input is not text')
const DEBUG_RENDER = bypass('_debug_render_only')

const FAMILY: Partial<Record<RouteName, KeyFamily>> = {
  generate: 'generate',
  chat: 'chat',
  embed: 'embed',
  embeddings: 'embeddings',
  openai_chat: 'openai_chat',
  openai_completions: 'openai_completions',
  openai_embeddings: 'openai_embed',
}

/** Cache-Control directives that matter here: `no-store` and `no-cache`. */
function cacheControl(headers: IncomingHttpHeaders): 'no-store' | 'no-cache' | undefined {
  const value = headers['cache-control']
  if (value === undefined) return undefined
  const v = value.toLowerCase()
  if (v.includes('no-store')) return 'no-store'
  if (v.includes('no-cache')) return 'no-cache'
  return undefined
}

/** Ollama's sampling is reproducible with a fixed seed or at temperature 0. */
function deterministic(body: Readonly<Record<string, unknown>>, openai: boolean): boolean {
  const source = openai ? body : body.options
  if (source === null || typeof source !== 'object') return false
  const { seed, temperature } = source as Record<string, unknown>
  return (seed !== undefined && seed !== null) || temperature === 0
}

/**
 * The plan for one request. `body` is the parsed JSON body (undefined when it did not parse or
 * has no model: such requests are passed through as they are).
 */
export function planFor(
  config: CacheConfig,
  route: RouteName,
  method: string | undefined,
  headers: IncomingHttpHeaders,
  body: Readonly<Record<string, unknown>> | undefined,
  model: string | undefined,
): CachePlan | undefined {
  const family = FAMILY[route]
  if (family === undefined || method !== 'POST' || !config.enabled) return undefined
  if (body === undefined || model === undefined || model === '') return undefined
  const control = cacheControl(headers)
  if (control === 'no-store') return NO_STORE
  const lookup = control !== 'no-cache'

  if (family === 'embed' || family === 'embeddings' || family === 'openai_embed') {
    const field = family === 'embeddings' ? 'prompt' : 'input'
    const raw = body[field]
    let inputs: readonly string[]
    if (typeof raw === 'string') inputs = [raw]
    else if (Array.isArray(raw) && raw.length > 0 && raw.every((v) => typeof v === 'string')) inputs = raw
    else return raw === undefined || raw === '' || (Array.isArray(raw) && raw.length === 0) ? LOAD_REQUEST : NOT_TEXT
    if (inputs.length === 1 && inputs[0] === '') return LOAD_REQUEST
    const layer: CacheLayerName = inputs.length === 1 ? 'embedding' : 'chunk'
    if (!config.layers[layer].enabled) return DISABLED_LAYER
    return { kind: 'vectors', layer, family, inputs, field, lookup }
  }

  const inference = config.layers.inference
  if (!inference.enabled) return DISABLED_LAYER
  if (inference.policy === 'off') return POLICY_OFF
  const openai = family === 'openai_chat' || family === 'openai_completions'
  if (body._debug_render_only === true) return DEBUG_RENDER
  if (family === 'chat' || family === 'openai_chat') {
    if (!Array.isArray(body.messages) || body.messages.length === 0) return LOAD_REQUEST
  } else if (typeof body.prompt !== 'string' || body.prompt === '') {
    return LOAD_REQUEST
  }
  if (inference.policy === 'deterministic' && !deterministic(body, openai)) return NOT_DETERMINISTIC
  // OpenAI's stream flag defaults to false (SSE when true), Ollama's to true (NDJSON).
  return { kind: 'answer', layer: 'inference', family, stream: openai ? body.stream === true : body.stream !== false, lookup }
}
