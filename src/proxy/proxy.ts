/**
 * Forwarding: reads and checks the request, lets the cache answer or forwards it to an instance
 * chosen by the balancer, fails over while nothing has reached the client, and relays the answer
 * chunk by chunk as it arrives.
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Readable } from 'node:stream'
import { performance } from 'node:perf_hooks'
import type { Dispatcher } from 'undici'
import type { Logger } from 'pino'
import type { Balancer } from '../balancer/balancer.js'
import type { Instance } from '../balancer/instance.js'
import type { RequestCache } from '../cache/request-cache.js'
import type { Config } from '../config/config.js'
import type { ClusterViews } from './cluster-views.js'
import { CorralError, attemptsFailed, bodyTooLarge, noInstance, type UpstreamFailure } from '../shared/errors.js'
import { replyError } from '../http/reply.js'
import { Exchange } from '../http/exchange.js'
import { acceptedRequestId, newRequestId, upstreamRequestHeaders } from './headers.js'
import { UpstreamAttempt } from './upstream-attempt.js'
import { BatchParts } from './batch-parts.js'
import { PRIORITY_HEADER, priorityOf } from './priority-of.js'
import { BodyAborted, parseFields, readBody } from '../http/request-body.js'
import { routeFor } from '../http/routes.js'
import { ClientAddresses } from '../limits/client-address.js'
import { UploadLimit } from '../limits/upload-limit.js'
import { expectsContinue } from '../limits/expect-continue.js'
import { canonicalModel } from '../shared/model-name.js'
import type { RequestWindow } from '../observability/request-window.js'
import type { Metrics } from '../observability/metrics.js'
import { logTarget } from '../observability/log-target.js'
import { ANONYMOUS, type Principal } from '../http/principal.js'

export interface ProxyDeps {
  balancer: Balancer
  cache: RequestCache
  logger: Logger
  config: Config['proxy']
  /** Request body limits per kind of route. */
  limits: Config['limits']
  /** Who a request comes from; default: nobody's X-Forwarded-* is trusted. */
  addresses?: ClientAddresses
  /** Last-minute request counts and latencies for the stats endpoint. */
  window: RequestWindow
  /** Answers the routes that cover every instance (merged model lists, model management). */
  views?: ClusterViews
  /** Prometheus metrics; undefined: not recorded. */
  metrics?: Metrics | undefined
}

export class Proxy {
  readonly #balancer: Balancer
  readonly #cache: RequestCache
  readonly #logger: Logger
  #config: Config['proxy']
  #limits: Config['limits']
  #addresses: ClientAddresses
  readonly #window: RequestWindow
  readonly #views: ClusterViews | undefined
  readonly #metrics: Metrics | undefined
  readonly #parts: BatchParts
  readonly #forwardOne = (ex: Exchange): Promise<void> => this.#forwardWithFailover(ex)
  /** Whole, or a bulk batch in parts (each part with its own failover). */
  readonly #forward = (ex: Exchange): Promise<void> => this.#parts.forward(ex, this.#forwardOne)
  #active = 0
  #idle: (() => void)[] = []

  constructor(deps: ProxyDeps) {
    this.#balancer = deps.balancer
    this.#cache = deps.cache
    this.#logger = deps.logger
    this.#config = deps.config
    this.#limits = deps.limits
    this.#addresses = deps.addresses ?? new ClientAddresses(false)
    this.#window = deps.window
    this.#views = deps.views
    this.#metrics = deps.metrics
    this.#parts = new BatchParts(deps.balancer)
  }

  /** New settings from a reload (attempts, timeouts, body limits), for requests from now on. */
  reconfigure(config: Config['proxy'], limits: Config['limits'] = this.#limits): void {
    this.#config = config
    this.#limits = limits
  }

  /** Requests being handled right now. */
  get active(): number {
    return this.#active
  }

  /** Resolves when no request is being handled. */
  whenIdle(): Promise<void> {
    if (this.#active === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idle.push(resolve))
  }

  /**
   * Handles one client request to the Ollama API (`pathname`: its path without the query;
   * `principal`: who sent it, once auth admitted it). Never rejects.
   */
  async handle(req: IncomingMessage, res: ServerResponse, pathname: string, principal: Principal = ANONYMOUS): Promise<void> {
    const startedAt = performance.now()
    const id = acceptedRequestId(req.headers['x-request-id']) ?? newRequestId()
    const route = routeFor(pathname, req.headers['content-type'])
    const ex = new Exchange(req, res, id, route, startedAt)
    if (principal !== ANONYMOUS) {
      ex.key = principal.name
      ex.keyLabel = principal.label
      ex.cachePartition = principal.cachePartition
      ex.tenant = principal.name
      ex.shareWeight = principal.weight
    }
    ex.peer = this.#addresses.peerOf(req)
    ex.trustedPeer = this.#addresses.trusts(ex.peer)
    res.once('close', () => {
      if (!res.writableFinished) {
        ex.clientGone = true
        ex.upstream?.cancel()
      }
    })
    this.#active++
    try {
      const maxBodyBytes = this.#limits.maxBodyBytes[route.body]
      if (route.streamsBody) {
        ex.uploadLimitBytes = maxBodyBytes
        const declared = req.headers['content-length']
        if (maxBodyBytes > 0 && declared !== undefined && Number(declared) > maxBodyBytes) throw bodyTooLarge(maxBodyBytes)
        if (expectsContinue(req)) res.writeContinue()
      } else {
        ex.body = await readBody(req, maxBodyBytes, res)
        if (route.readsJson) {
          const fields = parseFields(ex.body)
          if (fields !== undefined) {
            ex.json = fields.json
            ex.model = fields.model
            if (fields.model !== undefined && fields.model !== '') ex.modelKey = canonicalModel(fields.model)
            ex.affinityKey = this.#balancer.affinityKeyOf(req.headers, fields.json)
            if (route.work === 'generation') ex.maxTokens = tokenLimit(fields.json)
          }
        }
        if (route.work !== undefined) {
          ex.priority = priorityOf(route, ex.json, req.headers[PRIORITY_HEADER], principal, this.#balancer.priorityRules.bulkBatchSize)
        }
      }
      if (this.#views?.handles(route)) await this.#views.handle(ex)
      else await this.#cache.handle(ex, this.#forward)
    } catch (err) {
      this.#answerError(ex, err)
    } finally {
      this.#log(ex)
      if (--this.#active === 0 && this.#idle.length > 0) {
        const waiting = this.#idle
        this.#idle = []
        for (const resolve of waiting) resolve()
      }
    }
  }

  async #forwardWithFailover(ex: Exchange): Promise<void> {
    let tried: Set<Instance> | undefined
    let resetOnce: Set<Instance> | undefined
    let failures: { instance: string; failure: UpstreamFailure }[] | undefined
    // With no healthy instance, every instance gets its turn before the client hears "no".
    while (ex.attempts < this.#maxAttempts(ex) && !ex.clientGone) {
      const instance = await this.#balancer.acquire(ex, tried)
      if (instance === undefined) break
      ex.attempts++
      ex.instance = instance
      const failure = await this.#attempt(ex, instance)
      if (failure === undefined) return
      ;(failures ??= []).push({ instance: instance.name, failure })
      // A reset is often one stale keep-alive connection rather than a dead instance, so an
      // instance that reset gets one more chance (on another connection) before it counts as
      // tried; with a single instance, that is what saves the request.
      if (failure.kind === 'reset' && !(resetOnce ??= new Set()).has(instance)) resetOnce.add(instance)
      else (tried ??= new Set()).add(instance)
      this.#logger.warn(
        { req: ex.id, instance: instance.name, attempt: ex.attempts, kind: failure.kind, err: failure.message },
        'attempt failed',
      )
      if (!failure.retryable) break
    }
    if (ex.clientGone) return
    throw failures === undefined ? noInstance(this.#balancer.instances.length) : attemptsFailed(failures)
  }

  #maxAttempts(ex: Exchange): number {
    if (!ex.replayable) return 1
    return ex.fallback ? Math.max(this.#config.maxAttempts, this.#balancer.instances.length) : this.#config.maxAttempts
  }

  /** Sends the request to one instance (its slot taken) and relays the answer; a failure before any byte is returned. */
  async #attempt(ex: Exchange, instance: Instance): Promise<UpstreamFailure | undefined> {
    const attempt = new UpstreamAttempt(ex, instance, this.#config.retryOn)
    ex.upstream = attempt
    try {
      instance.pool.dispatch(
        {
          method: ex.req.method as Dispatcher.HttpMethod,
          path: ex.target,
          headers: upstreamRequestHeaders(ex.req.headers, {
            requestId: ex.id,
            clientAddress: ex.peer,
            trustedPeer: ex.trustedPeer,
            streamedBody: ex.route.streamsBody,
          }),
          body: ex.route.streamsBody ? uploadBody(ex) : ex.body !== undefined && ex.body.length > 0 ? ex.body : null,
          headersTimeout: this.#config.firstByteTimeoutMs,
          bodyTimeout: this.#config.idleTimeoutMs,
        },
        attempt,
      )
      const failure = await attempt.done
      // The client's own fault (an upload over its limit) is answered as such, not as the instance's.
      if (attempt.refusal !== undefined) throw attempt.refusal
      return failure
    } finally {
      ex.upstream = undefined
      this.#balancer.release(instance, ex, attempt)
      if (attempt.evalCount > 0) {
        ex.tokens = attempt.evalCount
        ex.promptTokens = attempt.promptEvalCount || undefined
      }
      this.#metrics?.recordAttempt(ex, instance, attempt)
    }
  }

  #answerError(ex: Exchange, err: unknown): void {
    const { res } = ex
    // A client that hung up while sending its body: nobody to answer.
    if (ex.clientGone || err instanceof BodyAborted) {
      ex.clientGone = true
      return
    }
    const error =
      err instanceof CorralError
        ? err
        : new CorralError('CORRAL_INTERNAL', 500, `internal error: ${err instanceof Error ? err.message : String(err)}`)
    if (!(err instanceof CorralError)) this.#logger.error({ req: ex.id, err }, 'unexpected error')
    ex.error = error.message
    if (res.headersSent) {
      res.destroy()
      return
    }
    const headers: Record<string, string | number> = { 'x-request-id': ex.id }
    if (error.retryAfterSeconds !== undefined) headers['retry-after'] = error.retryAfterSeconds
    // A body not read to its end (oversized, or an upload that never reached an instance): the
    // connection closes after answering, once the rest is drained (bounded), so the client still
    // sending reads the answer instead of a reset.
    replyError(res, error.status, error.message, ex.route.dialect, headers, ex.req.complete ? undefined : { linger: ex.req })
  }

  #log(ex: Exchange): void {
    const endedAt = performance.now()
    const ms = endedAt - ex.startedAt
    this.#window.record(ms, ex.error !== undefined || ex.res.statusCode >= 500)
    this.#metrics?.recordRequest(ex, endedAt)
    if (!this.#logger.isLevelEnabled('info')) return
    this.#logger.info(
      {
        req: ex.id,
        method: ex.req.method,
        path: logTarget(ex.target),
        route: ex.route.name,
        model: ex.model,
        status: ex.res.statusCode,
        instance: ex.instance?.name,
        attempts: ex.attempts,
        parts: ex.parts,
        cache: ex.cache,
        ms: Math.round(ms * 10) / 10,
        ttfb_ms: ex.firstByteAt > 0 ? Math.round((ex.firstByteAt - ex.startedAt) * 10) / 10 : undefined,
        tokens: ex.tokens,
        prompt_tokens: ex.promptTokens,
        client_gone: ex.clientGone || undefined,
        key: ex.key,
        err: ex.error,
      },
      'request',
    )
  }
}

/** The answer's token limit a generation request sets, if any: Ollama's `options.num_predict`, OpenAI's `max_tokens`/`max_completion_tokens`. */
function tokenLimit(json: Record<string, unknown>): number | undefined {
  const options = json.options as Record<string, unknown> | undefined
  const limit = options?.num_predict ?? json.max_tokens ?? json.max_completion_tokens
  return typeof limit === 'number' && limit > 0 ? limit : undefined
}

/** The body stream of an upload: the client's request, counted against its limit when chunked. */
function uploadBody(ex: Exchange): Readable {
  const { req } = ex
  if (ex.uploadLimitBytes === 0 || req.headers['content-length'] !== undefined) return req
  return req.pipe(new UploadLimit(ex.uploadLimitBytes))
}
