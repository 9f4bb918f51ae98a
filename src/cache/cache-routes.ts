/**
 * corral's own cache endpoints, answered by the server before the proxy:
 *
 * - `GET /api/advanced-cache-stats`: per-layer counters, store and Redis state.
 * - `DELETE /api/cache` (all), `?layer=embedding|chunk|inference`, `?model=NAME` (both combine):
 *   deletes by key prefix (SCAN + UNLINK on Redis; never FLUSHALL/FLUSHDB).
 * - `PUT`, `GET`, `DELETE /api/cache/chunks/{id}`: a small JSON document per chunk (at most
 *   64 KiB) for RAG services, kept with the chunk layer's TTL.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import { CACHE_LAYERS } from '../config/cache-schema.js'
import { CorralError } from '../shared/errors.js'
import { BodyAborted, readBody } from '../http/request-body.js'
import { JSON_TYPE, reply, replyJson } from '../http/reply.js'
import { canonicalModel } from '../shared/model-name.js'
import type { OllamaCache } from './ollama-cache.js'

/** Largest chunk-metadata document, in bytes. */
export const MAX_CHUNK_META_BYTES = 64 * 1024
const CHUNKS = '/api/cache/chunks/'
const CHUNK_ID_RE = /^[A-Za-z0-9._:@/+=-]{1,256}$/
const META_KIND = 5

export class CacheRoutes {
  readonly #cache: OllamaCache

  constructor(cache: OllamaCache) {
    this.#cache = cache
  }

  /** Whether `path` is one of these routes (then `handle` answers it). */
  owns(path: string): boolean {
    return path === '/api/advanced-cache-stats' || path === '/api/cache' || path.startsWith(CHUNKS)
  }

  /** Answers one request to a path `owns` accepted. Never rejects. */
  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    try {
      if (path === '/api/advanced-cache-stats') {
        if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 405, { error: 'method not allowed' }, 'GET, HEAD')
        return answer(res, 200, this.#cache.report(), undefined, req.method === 'HEAD')
      }
      if (path === '/api/cache') {
        if (req.method !== 'DELETE') return answer(res, 405, { error: 'method not allowed' }, 'DELETE')
        return await this.#flush(req, res)
      }
      return await this.#chunk(req, res, decodeURIComponent(path.slice(CHUNKS.length)))
    } catch (err) {
      if (err instanceof BodyAborted) return
      if (err instanceof CorralError) {
        res.setHeader('connection', 'close')
        return answer(res, err.status, { error: err.message })
      }
      answer(res, 503, { error: `cache store unavailable: ${err instanceof Error ? err.message : String(err)}` })
    }
  }

  async #flush(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const query = new URL(req.url ?? '/', 'http://x').searchParams
    const layer = query.get('layer') ?? undefined
    const model = query.get('model') ?? undefined
    if (layer !== undefined && !(CACHE_LAYERS as readonly string[]).includes(layer)) {
      return answer(res, 400, { error: `layer must be one of ${CACHE_LAYERS.join(', ')}, got ${JSON.stringify(layer)}` })
    }
    if (model === '') return answer(res, 400, { error: 'model must not be empty' })
    const prefixes = this.#cache.keys.prefixes(layer as (typeof CACHE_LAYERS)[number] | undefined, model === undefined ? undefined : canonicalModel(model))
    const deleted = await this.#cache.store.flush(prefixes)
    answer(res, 200, { deleted, layer: layer ?? null, model: model ?? null })
  }

  async #chunk(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    if (!CHUNK_ID_RE.test(id)) return answer(res, 400, { error: 'chunk id must be 1-256 letters, digits or . _ : @ / + = -' })
    const key = this.#cache.keys.chunkMeta(id)
    const { store } = this.#cache
    switch (req.method) {
      case 'PUT': {
        const body = await readBody(req, MAX_CHUNK_META_BYTES)
        try {
          JSON.parse(body.toString('utf8'))
        } catch {
          return answer(res, 400, { error: 'chunk metadata must be a JSON document' })
        }
        const value = Buffer.allocUnsafe(body.length + 1)
        value[0] = META_KIND
        body.copy(value, 1)
        if (!(await store.set(key, value, this.#cache.ttlMs('chunk')))) return answer(res, 503, { error: 'cache store unavailable: not stored' })
        res.writeHead(204)
        return void res.end()
      }
      case 'GET':
      case 'HEAD': {
        const entry = await store.get(key)
        // A failing store reads as a miss on the request path; here "not found" would be a lie.
        if (entry === undefined && (store.health()?.state ?? 'up') !== 'up') {
          return answer(res, 503, { error: 'cache store unavailable: Redis is down' })
        }
        if (entry === undefined || entry.value[0] !== META_KIND) return answer(res, 404, { error: `chunk ${JSON.stringify(id)} not found` })
        const body = entry.value.subarray(1)
        return reply(res, 200, { 'content-type': JSON_TYPE }, body, { head: req.method === 'HEAD' })
      }
      case 'DELETE': {
        if (!(await store.delete(key))) return answer(res, 404, { error: `chunk ${JSON.stringify(id)} not found` })
        res.writeHead(204)
        return void res.end()
      }
      default:
        return answer(res, 405, { error: 'method not allowed' }, 'GET, HEAD, PUT, DELETE')
    }
  }
}

function answer(res: ServerResponse, status: number, value: unknown, allow?: string, head = false): void {
  replyJson(res, status, value, allow === undefined ? {} : { allow }, { head })
}
