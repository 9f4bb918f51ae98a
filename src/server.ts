/**
 * The HTTP server clients talk to: while auth is on, every request is admitted by the
 * authenticator first; then corral's own routes (`/healthz`, `/readyz`, `/metrics`, Ollama's
 * `/` heartbeat) are answered here, everything else goes to the proxy. Timeouts are set so that they
 * actually fire: Node checks header and request timeouts only every `connectionsCheckingInterval`
 * (30 s by default), which would let a slowloris client hold a socket for half a minute.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import type { Config } from './config/config.js'
import type { ReloadResult } from './config/reload-result.js'
import type { Readiness } from './balancer/readiness.js'
import type { CacheRoutes } from './cache/cache-routes.js'
import type { Proxy } from './proxy/proxy.js'
import type { Metrics } from './observability/metrics.js'
import { answerMetrics } from './observability/metrics-server.js'
import { logTarget } from './observability/log-target.js'
import { pathnameOf } from './http/routes.js'
import type { Authenticator } from './auth/authenticator.js'
import { ANONYMOUS, type Principal } from './http/principal.js'
import { JSON_TYPE, PLAIN_JSON_TYPE, dialectOf, errorBody, reply, replyError, replyJson } from './http/reply.js'
import type { Logger } from './observability/logger.js'
import type { ClientAddresses } from './limits/client-address.js'
import type { ClientLimiter } from './limits/client-limiter.js'
import { CONNECT_REFUSAL, refusalOf } from './limits/request-checks.js'
import { normaliseTarget } from './limits/request-target.js'
import { expectsContinue } from './limits/expect-continue.js'

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
  /** Who a request comes from (trust_proxy). */
  addresses: ClientAddresses
  /** Requests in flight per client (`server.max_requests_per_client`; off at 0). */
  perClient: ClientLimiter
  logger: Logger
}

const OLLAMA_IS_RUNNING = 'Ollama is running'
const RELOAD_PATH = '/api/admin/reload'
/** Dropped connections are logged at most this often (a flood must not flood the log too). */
const DROP_LOG_INTERVAL_MS = 10_000

export function createHttpServer(config: Config['server'], parts: ServerParts): Server {
  const { addresses, perClient } = parts
  const condemned = new WeakSet<Socket>()
  const server = createServer(
    {
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.requestTimeoutMs,
      keepAliveTimeout: config.keepAliveTimeoutMs,
      maxHeaderSize: config.maxHeaderBytes,
      connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs),
      noDelay: true,
      // Checked in refusalOf, so the answer is in Ollama's shape (node's own 400 has no body).
      requireHostHeader: false,
    },
    (req, res) => {
      // A request parsed after a refused framing (pipelined in the same bytes) is not answered:
      // it may be a smuggled one. The connection closes once the refusal is sent.
      if (condemned.has(req.socket)) return
      if (parts.draining()) res.setHeader('connection', 'close')
      const refusal = refusalOf(req)
      if (refusal !== undefined) {
        if (refusal.close === true) condemned.add(req.socket)
        return refuse(parts.logger, req, res, refusal.status, refusal.message, refusal.headers, refusal.close)
      }
      // Every later step (auth scopes, own routes, route table, cache, upstream URL) sees the
      // normalised target.
      const target = normaliseTarget(req.url ?? '/')
      if (target === undefined) return refuse(parts.logger, req, res, 400, 'invalid request path')
      req.url = target
      const path = pathnameOf(target)
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
  // With a listener here node no longer answers `Expect: 100-continue` by itself: the 100 is
  // sent only once the request is accepted (the proxy sends it after its size check), so a
  // client is told 405, 429 or 413 before it uploads anything.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => server.emit('request', req, res))
  server.on('clientError', onClientError)
  server.on('connect', onConnect)
  server.maxConnections = maxConnectionsOf(config)
  let dropped = 0
  let loggedAt = -Infinity
  server.on('drop', () => {
    dropped++
    const now = performance.now()
    if (now - loggedAt < DROP_LOG_INTERVAL_MS) return
    loggedAt = now
    parts.logger.warn({ dropped, max_connections: server.maxConnections }, 'connections over server.max_connections closed')
    dropped = 0
  })
  return server

  /** Answers an admitted request: corral's own routes here, everything else through the proxy. */
  function dispatch(req: IncomingMessage, res: ServerResponse, path: string, principal: Principal): void {
    const isRead = req.method === 'GET' || req.method === 'HEAD'
    // corral's own paths match with or without a trailing slash: `/healthz/` is the probe, not
    // a request for the instance (auth judges it as `/healthz` too).
    const own = withoutTrailingSlash(path)
    if (isRead && own === '/') return answer(res, req, 200, 'text/plain; charset=utf-8', OLLAMA_IS_RUNNING)
    if (isRead && own === '/healthz') return answer(res, req, 200, PLAIN_JSON_TYPE, '{"status":"ok"}')
    if (isRead && own === '/readyz') return void ready(req, res, parts.readiness)
    if (isRead && own === '/api/load-balancer-stats') {
      return answer(res, req, 200, JSON_TYPE, JSON.stringify(parts.loadBalancerStats()))
    }
    if (isRead && own === '/metrics' && parts.metrics !== undefined) return void answerMetrics(req, res, parts.metrics)
    if (own === RELOAD_PATH && parts.reload !== undefined) return answerReload(req, res, parts.reload)
    if (perClient.enabled) {
      const client = addresses.clientOf(req)
      if (!perClient.tryAcquire(client)) {
        return refuse(parts.logger, req, res, 429, `too many requests in flight from this client (limit ${perClient.max})`, { 'retry-after': '1' })
      }
      // 'close' comes once whatever the end: finished, aborted by the client, or failed.
      res.once('close', () => perClient.release(client))
    }
    if (parts.cacheRoutes?.owns(own)) {
      if (expectsContinue(req)) res.writeContinue()
      return void parts.cacheRoutes.handle(req, res, own)
    }
    void parts.proxy.handle(req, res, path, principal)
  }
}

/** `/healthz/` -> `/healthz`; the root stays `/`. */
function withoutTrailingSlash(path: string): string {
  return path.length > 1 && path.charCodeAt(path.length - 1) === 0x2f ? path.slice(0, -1) : path
}

/** An error answer corral makes before the request reaches the proxy, in the path's dialect. */
function refuse(
  logger: Logger,
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  message: string,
  headers?: Readonly<Record<string, string>>,
  close = false,
): void {
  // A body left unread is not read to keep the connection; it is drained (bounded) before the
  // connection closes, so a client still sending reads the answer instead of a reset. A refused
  // framing (`close`) is not read any further: its bytes may be a smuggled request.
  const unreadBody = !req.complete && (req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0')
  replyError(res, status, message, dialectOf(req.url ?? ''), { ...headers }, {
    head: req.method === 'HEAD',
    linger: unreadBody && !close ? req : undefined,
    close,
  })
  // As the proxy's request line, so refused requests show up in the same place (the target as sent, bounded).
  if (logger.isLevelEnabled('info')) {
    logger.info({ method: req.method, path: logTarget(req.url ?? '').slice(0, 200), status, err: message, peer: req.socket.remoteAddress }, 'refused')
  }
}

/** CONNECT would make corral a tunnel to a host of the client's choosing: 405, and the socket is closed. */
function onConnect(_req: IncomingMessage, socket: Duplex): void {
  writeRawError(socket, CONNECT_REFUSAL.status, 'Method Not Allowed', CONNECT_REFUSAL.message, `Allow: ${CONNECT_REFUSAL.headers!.allow}\r\n`)
}

function answer(res: ServerResponse, req: IncomingMessage, status: number, type: string, body: string): void {
  reply(res, status, { 'content-type': type }, body, { head: req.method === 'HEAD' })
}

/**
 * `POST /api/admin/reload`: 200 with what changed; 422 when the file is invalid (the running
 * configuration is kept); 409 when there is no file to read again or corral is stopping.
 */
function answerReload(req: IncomingMessage, res: ServerResponse, reload: () => ReloadResult): void {
  if (req.method !== 'POST') {
    const message = `method ${req.method ?? ''} not allowed on ${RELOAD_PATH}; use POST`
    return replyError(res, 405, message, 'ollama', { allow: 'POST' }, { head: req.method === 'HEAD' })
  }
  const result = reload()
  if (result.status === 'reloaded') {
    const body = { status: 'reloaded', changes: result.changes, restart_required: result.restartRequired }
    return replyJson(res, 200, body)
  }
  replyError(res, result.status === 'invalid' ? 422 : 409, result.error, 'ollama')
}

async function ready(req: IncomingMessage, res: ServerResponse, readiness: Readiness): Promise<void> {
  const probes = await readiness.check()
  const ok = probes.some((p) => p.reachable)
  const body = JSON.stringify({ status: ok ? 'ready' : 'unavailable', instances: probes })
  answer(res, req, ok ? 200 : 503, PLAIN_JSON_TYPE, body)
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
  writeRawError(socket, status, reason, message)
}

function writeRawError(socket: Duplex, status: number, reason: string, message: string, extra = ''): void {
  const body = errorBody(message, 'ollama', status)
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}Connection: close\r\n\r\n${body}`,
  )
}

/** node's `server.maxConnections` for `server.max_connections` (0: no limit). */
export function maxConnectionsOf(config: Config['server']): number {
  return config.maxConnections > 0 ? config.maxConnections : Infinity
}
