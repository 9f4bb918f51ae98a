/**
 * The route table: which Ollama endpoint a request is for, and what corral must do with its body.
 * Routes are constants, so classifying a request allocates nothing. Route names are bounded and
 * serve as metric labels.
 */

import type { WorkKind } from '../balancer/instance.js'
import type { BodyKind } from '../config/config.js'
import type { Dialect } from './reply.js'

export type RouteName =
  | 'generate'
  | 'chat'
  | 'embed'
  | 'embeddings'
  | 'show'
  | 'tags'
  | 'ps'
  | 'version'
  | 'pull'
  | 'push'
  | 'create'
  | 'copy'
  | 'delete'
  | 'blobs'
  | 'openai_chat'
  | 'openai_completions'
  | 'openai_embeddings'
  | 'openai_models'
  | 'openai_model'
  | 'openai_other'
  | 'other'

export interface Route {
  readonly name: RouteName
  /** The model work the route runs (timed and capped per instance), or undefined for none. */
  readonly work: WorkKind | undefined
  /** Error bodies corral writes for this route: Ollama's `{"error": "..."}` or OpenAI's. */
  readonly dialect: Dialect
  /** The JSON body is parsed so corral can read `model` and friends (and reject bad types). */
  readonly readsJson: boolean
  /**
   * The request body is streamed to the instance instead of being read first (blob uploads can
   * be gigabytes). Such requests cannot be retried on another instance.
   */
  readonly streamsBody: boolean
  /** Which `limits.max_body_size` applies. */
  readonly body: BodyKind
}

const WORK: Partial<Record<RouteName, WorkKind>> = {
  generate: 'generation',
  chat: 'generation',
  openai_chat: 'generation',
  openai_completions: 'generation',
  embed: 'embedding',
  embeddings: 'embedding',
  openai_embeddings: 'embedding',
}

const MODEL_MANAGEMENT: ReadonlySet<RouteName> = new Set(['show', 'pull', 'push', 'create', 'copy', 'delete'])

function bodyKind(name: RouteName, streamsBody: boolean): BodyKind {
  if (streamsBody) return 'upload'
  const work = WORK[name]
  if (work !== undefined) return work
  return MODEL_MANAGEMENT.has(name) ? 'model' : 'other'
}

const route = (name: RouteName, readsJson: boolean, dialect: Route['dialect'] = 'ollama', streamsBody = false): Route =>
  Object.freeze({ name, work: WORK[name], dialect, readsJson, streamsBody, body: bodyKind(name, streamsBody) })

const EXACT: ReadonlyMap<string, Route> = new Map([
  ['/api/generate', route('generate', true)],
  ['/api/chat', route('chat', true)],
  ['/api/embed', route('embed', true)],
  ['/api/embeddings', route('embeddings', true)],
  ['/api/show', route('show', true)],
  ['/api/tags', route('tags', false)],
  ['/api/ps', route('ps', false)],
  ['/api/version', route('version', false)],
  ['/api/pull', route('pull', true)],
  ['/api/push', route('push', true)],
  ['/api/create', route('create', true)],
  ['/api/copy', route('copy', true)],
  ['/api/delete', route('delete', true)],
  ['/v1/chat/completions', route('openai_chat', true, 'openai')],
  ['/v1/completions', route('openai_completions', true, 'openai')],
  ['/v1/embeddings', route('openai_embeddings', true, 'openai')],
  ['/v1/models', route('openai_models', false, 'openai')],
])

const BLOBS = route('blobs', false, 'ollama', true)
const OPENAI_MODEL = route('openai_model', false, 'openai')
const OPENAI_OTHER = route('openai_other', false, 'openai')
const OPENAI_UPLOAD = route('openai_other', false, 'openai', true)
const OTHER = route('other', false)

/** Classifies a request by its path (without the query string) and content type. */
export function routeFor(pathname: string, contentType: string | undefined): Route {
  const exact = EXACT.get(pathname)
  if (exact !== undefined) return exact
  if (pathname.startsWith('/api/blobs/')) return BLOBS
  if (pathname.startsWith('/v1/')) {
    if (pathname.startsWith('/v1/models/')) return OPENAI_MODEL
    // Multipart uploads (audio transcriptions) are streamed like blobs.
    return contentType?.startsWith('multipart/') ? OPENAI_UPLOAD : OPENAI_OTHER
  }
  return OTHER
}

/** The path of a request target without its query string. */
export function pathnameOf(target: string): string {
  const q = target.indexOf('?')
  return q === -1 ? target : target.slice(0, q)
}
