/**
 * Which scope a request needs, from its method and path: `open` (kubelet probes, and /metrics
 * when `auth.metrics_open`), `admin` (stats, metrics, the cache's own endpoints, model
 * management, blob uploads, /api/admin/*), or `user` (everything else: running models, listing
 * them, /v1/*). Paths are judged as Ollama will see them: percent-decoded, with `.`/`..`
 * segments resolved, repeated and trailing slashes collapsed, so `/api/%70ull` or `/api//pull/`
 * is still model management.
 */
export type Scope = 'open' | 'user' | 'admin'

const ADMIN_EXACT: ReadonlySet<string> = new Set([
  '/metrics',
  '/api/load-balancer-stats',
  '/api/advanced-cache-stats',
  '/api/cache',
  '/api/pull',
  '/api/push',
  '/api/create',
  '/api/copy',
  '/api/delete',
])
const ADMIN_PREFIXES = ['/api/cache/', '/api/blobs/', '/api/admin/'] as const
const NEEDS_NORMALIZING = /%|\/\/|\/\.|.\/$/

export function scopeOf(method: string | undefined, rawPath: string, metricsOpen: boolean): Scope {
  // An absolute-form target (`http://host/api/pull`), which Go's server routes by its path, or `*`.
  if (rawPath.charCodeAt(0) !== 0x2f) return 'admin'
  const path = NEEDS_NORMALIZING.test(rawPath) ? normalizedPath(rawPath) : rawPath
  if (path === undefined) return 'admin' // undecodable: the strictest answer
  const read = method === 'GET' || method === 'HEAD'
  if (read && (path === '/healthz' || path === '/readyz')) return 'open'
  if (path === '/metrics' && metricsOpen && read) return 'open'
  if (ADMIN_EXACT.has(path)) return 'admin'
  for (const prefix of ADMIN_PREFIXES) if (path.startsWith(prefix)) return 'admin'
  return 'user'
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
