/**
 * The HTTP server clients talk to: while auth is on, every request is admitted by the
 * authenticator first; then corral's own routes (`/healthz`, `/readyz`, `/metrics`, Ollama's
 * `/` heartbeat) are answered here, everything else goes to the proxy. Timeouts are set so that they
 * actually fire: Node checks header and request timeouts only every `connectionsCheckingInterval`
 * (30 s by default), which would let a slowloris client hold a socket for half a minute.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Config } from './config/config.js'
import type { ReloadResult } from './config/reload-result.js'
import type { Readiness } from './balancer/readiness.js'
import type { CacheRoutes } from './cache/cache-routes.js'
import type { Proxy } from './proxy/proxy.js'
import type { Metrics } from './observability/metrics.js'
import { answerMetrics } from './observability/metrics-server.js'
import { pathnameOf } from './proxy/routes.js'
import type { Authenticator } from './auth/authenticator.js'
import { ANONYMOUS, type Principal } from './auth/principal.js'

export interface ServerParts {
  proxy: Proxy
  readiness: Readiness
  /** The cache's own endpoints (stats, flush, chunk metadata); undefined without a built-in cache. */
  cacheRoutes: CacheRoutes | undefined
  /** True once shutdown began: responses then ask clients to close their connection. */
  draining: () => boolean
  /** The body of `GET /api/load-balancer-stats`. */
  loadBalancerStats: () => unknown
  /** Served at `GET /metrics`; undefined when metrics are off. */
  metrics: Metrics | undefined
  /** Admits every request first while auth is on; undefined: no auth at all. */
  auth?: Authenticator | undefined
  /** `POST /api/admin/reload`: reads the configuration again and applies it; undefined: no such route. */
  reload?: (() => ReloadResult) | undefined
}

const OLLAMA_IS_RUNNING = 'Ollama is running'
const RELOAD_PATH = '/api/admin/reload'
const JSON_TYPE = 'application/json; charset=utf-8'

export function createHttpServer(config: Config['server'], parts: ServerParts): Server {
  const server = createServer(
    {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      maxHeaderSize: config.maxHeaderBytes,
      connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs),
      noDelay: true,
    },
    (req, res) => {
      if (parts.draining()) res.setHeader('connection', 'close')
      const path = pathnameOf(req.url ?? '/')
      const auth = parts.auth
      if (auth?.enabled === true) {
        void auth.admit(req, res, path).then((principal) => {
          if (principal !== undefined) dispatch(req, res, path, principal)
        })
        return
      }
      dispatch(req, res, path, ANONYMOUS)
    },
  )
  server.on('clientError', onClientError)
  return server

  /** Answers an admitted request: corral's own routes here, everything else through the proxy. */
  function dispatch(req: IncomingMessage, res: ServerResponse, path: string, principal: Principal): void {
    const isRead = req.method === 'GET' || req.method === 'HEAD'
    if (isRead && path === '/') return answer(res, req, 200, 'text/plain; charset=utf-8', OLLAMA_IS_RUNNING)
    if (isRead && path === '/healthz') return answer(res, req, 200, 'application/json', '{"status":"ok"}')
    if (isRead && path === '/readyz') return void ready(req, res, parts.readiness)
    if (isRead && path === '/api/load-balancer-stats') {
      return answer(res, req, 200, 'application/json; charset=utf-8', JSON.stringify(parts.loadBalancerStats()))
    }
    if (isRead && path === '/metrics' && parts.metrics !== undefined) return void answerMetrics(req, res, parts.metrics)
    if (path === RELOAD_PATH && parts.reload !== undefined) return answerReload(req, res, parts.reload)
    if (parts.cacheRoutes?.owns(path)) return void parts.cacheRoutes.handle(req, res, path)
    void parts.proxy.handle(req, res, path, principal)
  }
}

function answer(res: ServerResponse, req: IncomingMessage, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) })
  res.end(req.method === 'HEAD' ? undefined : body)
}

/**
 * `POST /api/admin/reload`: 200 with what changed; 422 when the file is invalid (the running
 * configuration is kept); 409 when there is no file to read again or corral is stopping.
 */
function answerReload(req: IncomingMessage, res: ServerResponse, reload: () => ReloadResult): void {
  if (req.method !== 'POST') {
    res.setHeader('allow', 'POST')
    return answer(res, req, 405, JSON_TYPE, JSON.stringify({ error: `method ${req.method ?? ''} not allowed on ${RELOAD_PATH}; use POST` }))
  }
  const result = reload()
  if (result.status === 'reloaded') {
    const body = { status: 'reloaded', changes: result.changes, restart_required: result.restartRequired }
    return answer(res, req, 200, JSON_TYPE, JSON.stringify(body))
  }
  answer(res, req, result.status === 'invalid' ? 422 : 409, JSON_TYPE, JSON.stringify({ error: result.error }))
}

async function ready(req: IncomingMessage, res: ServerResponse, readiness: Readiness): Promise<void> {
  const probes = await readiness.check()
  const ok = probes.some((p) => p.reachable)
  const body = JSON.stringify({ status: ok ? 'ready' : 'unavailable', instances: probes })
  answer(res, req, ok ? 200 : 503, 'application/json', body)
}

/**
 * Malformed requests, oversized headers and timeouts are answered in Ollama's error shape before
 * the connection is closed (Node's default answers with an empty body).
 */
function onClientError(err: Error & { code?: string }, socket: Duplex): void {
  // Nothing can be said on a dead socket, nor in the middle of a response already going out.
  const inResponse = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent
  if (!socket.writable || err.code === 'ECONNRESET' || inResponse === true) {
    socket.destroy()
    return
  }
  const [status, reason, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'request headers are too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'request not received in time']
        : [400, 'Bad Request', `malformed request: ${err.code ?? err.message}`]
  const body = JSON.stringify({ error: message })
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  )
}
