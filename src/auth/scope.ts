/**
 * Which scope a request needs, from its method and path: `open` (kubelet probes, and /metrics
 * when `auth.metrics_open`), `user` (exactly the inference and read routes: running models,
 * listing and showing them, Ollama's heartbeat, their OpenAI-compatible twins), or `admin`
 * (everything else: stats, metrics, the cache's own endpoints, model management, blob uploads,
 * /api/admin/*, Ollama's account and experimental routes, and any path corral does not know).
 * Deny by default: a route Ollama adds later needs an admin key until it is listed here. Paths
 * are judged as Ollama will see them: percent-decoded, with `.`/`..` segments resolved,
 * repeated and trailing slashes collapsed, so `/api/%70ull` or `/api//pull/` is still model
 * management.
 */
export type Scope = 'open' | 'user' | 'admin'

/** The routes a key without admin reaches (any method: Ollama answers a wrong one itself). */
const USER_EXACT: ReadonlySet<string> = new Set([
  '/',
  '/api/generate',
  '/api/chat',
  '/api/embed',
  '/api/embeddings',
  '/api/show',
  '/api/tags',
  '/api/ps',
  '/api/version',
  '/v1/chat/completions',
  '/v1/completions',
  '/v1/embeddings',
  '/v1/models',
  '/v1/responses',
  '/v1/messages',
  '/v1/audio/transcriptions',
])
/** `/v1/models/<model>`: one model's card (model names may hold slashes: `hf.co/org/model`). */
const USER_MODEL_PREFIX = '/v1/models/'
const NEEDS_NORMALIZING = /%|\/\/|\/\.|.\/$/

export function scopeOf(method: string | undefined, rawPath: string, metricsOpen: boolean): Scope {
  // An absolute-form target (`http://host/api/pull`), which Go's server routes by its path, or `*`.
  if (rawPath.charCodeAt(0) !== 0x2f) return 'admin'
  const path = NEEDS_NORMALIZING.test(rawPath) ? normalizedPath(rawPath) : rawPath
  if (path === undefined) return 'admin' // undecodable: the strictest answer
  const read = method === 'GET' || method === 'HEAD'
  if (read && (path === '/healthz' || path === '/readyz')) return 'open'
  if (path === '/metrics' && metricsOpen && read) return 'open'
  if (USER_EXACT.has(path)) return 'user'
  if (path.startsWith(USER_MODEL_PREFIX) && path.length > USER_MODEL_PREFIX.length) return 'user'
  return 'admin'
}

/** The path as a router that decodes it would match it; undefined when it does not decode. */
export function normalizedPath(rawPath: string): string | undefined {
  let decoded: string
  try {
    decoded = decodeURIComponent(rawPath)
  } catch {
    return undefined
  }
  const out: string[] = []
  for (const segment of decoded.split('/')) {
    if (segment === '' || segment === '.') continue
    if (segment === '..') out.pop()
    else out.push(segment)
  }
  return `/${out.join('/')}`
}
