/**
 * The optional second listener for `metrics.listen`: it answers `GET /metrics` (and `HEAD`) and
 * nothing else, so Prometheus can scrape an address clients never reach.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { pathnameOf } from '../http/routes.js'
import type { Metrics } from './metrics.js'
import { PLAIN_JSON_TYPE, reply, replyError } from '../http/reply.js'
import type { Principal } from '../http/principal.js'

/** What the metrics listener needs of the authenticator (auth sits above observability). */
export interface MetricsGate {
  readonly enabled: boolean
  /** Resolves to the caller, or undefined once it has answered the refusal itself. */
  admit(req: IncomingMessage, res: ServerResponse, pathname: string): Promise<Principal | undefined>
}

export function createMetricsServer(metrics: Metrics, auth?: MetricsGate): Server {
  const server = createServer((req, res) => {
    const isRead = req.method === 'GET' || req.method === 'HEAD'
    if (isRead && pathnameOf(req.url ?? '/') === '/metrics') {
      // The same rule as on the main listener: an admin key, unless auth.metrics_open.
      if (auth?.enabled === true) {
        return void auth.admit(req, res, '/metrics').then((principal) => {
          if (principal !== undefined) void answerMetrics(req, res, metrics)
        })
      }
      return void answerMetrics(req, res, metrics)
    }
    replyError(res, 404, 'not found: this address serves GET /metrics only', 'ollama', { 'content-type': PLAIN_JSON_TYPE })
  })
  return server
}

/** Answers a scrape with the registry's exposition; a failing collect becomes a 500, never a crash. */
export async function answerMetrics(req: IncomingMessage, res: ServerResponse, metrics: Metrics): Promise<void> {
  let scraped: { contentType: string; body: string }
  try {
    scraped = await metrics.scrape()
  } catch (err) {
    const message = `metrics collection failed: ${err instanceof Error ? err.message : String(err)}`
    return replyError(res, 500, message, 'ollama', { 'content-type': PLAIN_JSON_TYPE })
  }
  reply(res, 200, { 'content-type': scraped.contentType }, scraped.body, { head: req.method === 'HEAD' })
}
