/**
 * "One big Ollama": the answers that cover every instance instead of one. The model lists
 * (`/api/tags`, `/api/ps`, `/v1/models`) are the union of every candidate instance's, and model
 * management (`/api/pull`, `/api/create`, `/api/copy`, `/api/delete`) is sent to every candidate
 * instance, with one answer in Ollama's shape for all of them.
 */
import { performance } from 'node:perf_hooks'
import type { Dispatcher } from 'undici'
import type { Logger } from 'pino'
import type { Instance } from '../balancer/instance.js'
import type { Config } from '../config/config.js'
import { CorralError, attemptsFailed, busyFailure, upstreamFailure, type UpstreamFailure } from '../shared/errors.js'
import type { Exchange } from '../http/exchange.js'
import { JSON_TYPE, NDJSON_TYPE, errorBody, errorMessageOf, reply } from '../http/reply.js'
import { upstreamRequestHeaders } from './headers.js'
import { occupySlot, type FanOutSlots } from './fan-out-slots.js'
import { combinedError, failureMessage, type Outcome } from './fan-out-outcome.js'
import { listOf, mergeModelLists, type ModelListKind } from './model-lists.js'
import { ProgressMerge } from './progress-merge.js'
import type { Route, RouteName } from '../http/routes.js'

export interface ClusterViewsDeps {
  /** The instances a fan-out or merged view covers right now: the healthy ones (all of them when none is healthy). */
  candidates: () => readonly Instance[]
  logger: Logger
  config: Config['proxy']
  /** Called after a model-management request (pull, delete, copy, create) with the instances it reached. */
  modelsChanged?: (instances: readonly Instance[]) => void
  /** Where each instance's part takes and gives back its slot (the balancer), so in-flight counts and passive health see it. */
  slots?: FanOutSlots
}


/** Routes answered with the union of every instance's list. */
const MERGED: ReadonlySet<RouteName> = new Set<RouteName>(['tags', 'ps', 'openai_models'])
/** Model-management routes sent to every instance. */
const FANNED_OUT: ReadonlySet<RouteName> = new Set<RouteName>(['pull', 'create', 'copy', 'delete'])


/** One instance's part in a fanned-out request, once its answer's headers arrived (or failed to). */
type Sent =
  | { readonly instance: Instance; readonly reply: Dispatcher.ResponseData; readonly failure?: undefined }
  | { readonly instance: Instance; readonly reply?: undefined; readonly failure: UpstreamFailure }

/** Why an instance's model list is missing from a merged list. */
interface ListFailure {
  /** The instance's HTTP status; undefined when there was no usable answer. */
  readonly status: number | undefined
  /** The instance's own error message (or the transport error). */
  readonly message: string
  readonly failure: UpstreamFailure
}

/**
 * Answers the routes that speak for the whole cluster. Every candidate instance gets the request
 * at once (same headers, body and request id); instances that cannot be reached or answer an
 * error are named in the answer, never hidden.
 */
export class ClusterViews {
  readonly #candidates: () => readonly Instance[]
  readonly #logger: Logger
  #config: Config['proxy']
  readonly #modelsChanged: (instances: readonly Instance[]) => void
  readonly #slots: FanOutSlots | undefined

  constructor(deps: ClusterViewsDeps) {
    this.#candidates = deps.candidates
    this.#logger = deps.logger
    this.#config = deps.config
    this.#modelsChanged = deps.modelsChanged ?? (() => undefined)
    this.#slots = deps.slots
  }

  /** New timeouts from a reload, for requests from now on. */
  reconfigure(config: Config['proxy']): void {
    this.#config = config
  }

  /** Whether `route` is answered here (tags, ps, openai_models list (not /v1/models/{name}), pull, delete, copy, create). */
  handles(route: Route): boolean {
    return MERGED.has(route.name) || FANNED_OUT.has(route.name)
  }

  /** Answers the exchange (body already read and parsed into ex.body / ex.json / ex.model). Never rejects for upstream failures: answers errors itself or throws CorralError for Proxy to answer. */
  async handle(ex: Exchange): Promise<void> {
    const instances = this.#candidates()
    if (instances.length === 0) throw new CorralError('CORRAL_NO_INSTANCE', 503, 'no instance is configured to answer', 1)
    const name = ex.route.name
    if (MERGED.has(name)) await this.#mergedList(ex, instances, name as ModelListKind)
    else await this.#fanOut(ex, instances)
  }

  // ---- merged lists -------------------------------------------------------------------------

  async #mergedList(ex: Exchange, instances: readonly Instance[], kind: ModelListKind): Promise<void> {
    // HEAD /api/tags (the only list Ollama answers HEAD for): asked with GET, for the real length.
    const method = ex.req.method === 'HEAD' && kind === 'tags' ? 'GET' : (ex.req.method ?? 'GET')
    const sent = await this.#send(ex, instances, method)
    const read = await Promise.all(sent.map((s) => this.#readList(s, kind)))
    ex.upstream = undefined
    if (ex.clientGone) return
    const lists: unknown[][] = []
    const failures: (ListFailure & { instance: string })[] = []
    for (let i = 0; i < read.length; i++) {
      const r = read[i]!
      if (Array.isArray(r)) lists.push(r)
      else failures.push({ instance: instances[i]!.name, ...r })
    }
    if (lists.length === 0) {
      // Every instance refused the request itself (a wrong method, say): that is the answer.
      const first = failures[0]!
      if (first.status !== undefined && first.status < 500 && failures.every((f) => f.status === first.status)) {
        const messages = new Set(failures.map((f) => f.message))
        const message = messages.size === 1 ? first.message : failures.map((f) => `${f.instance}: ${f.message}`).join('; ')
        throw new CorralError('CORRAL_UPSTREAM_FAILED', first.status, message)
      }
      throw attemptsFailed(failures)
    }
    for (const f of failures) {
      this.#logger.warn({ req: ex.id, instance: f.instance, route: kind, err: f.failure.message }, 'instance left out of the merged list')
    }
    const merged = mergeModelLists(kind, lists)
    const body = JSON.stringify(kind === 'openai_models' ? { object: 'list', data: merged } : { models: merged })
    this.#answer(ex, 200, JSON_TYPE, body)
  }

  /** The model list of one instance's answer, or why there is none. */
  async #readList(s: Sent, kind: ModelListKind): Promise<unknown[] | ListFailure> {
    if (s.reply === undefined) return { status: undefined, message: s.failure.message, failure: s.failure }
    const status = s.reply.statusCode
    let text: string
    try {
      text = await s.reply.body.text()
    } catch (err) {
      const failure = this.#failed(s.instance, err)
      return { status: undefined, message: failure.message, failure }
    }
    if (status < 200 || status > 299) {
      const message = errorMessageOf(status, text)
      const failure: UpstreamFailure =
        status === 503 ? busyFailure(message) : { kind: 'other', message: `${status} ${message}`, retryable: false }
      return { status, message, failure }
    }
    const list = listOf(kind, text)
    if (list !== undefined) return list
    const message = `invalid ${kind} answer`
    return { status: undefined, message, failure: { kind: 'other', message, retryable: false } }
  }

  // ---- model management ---------------------------------------------------------------------

  async #fanOut(ex: Exchange, instances: readonly Instance[]): Promise<void> {
    const op = ex.route.name
    const progress = op === 'pull' || op === 'create'
    const streamed = progress && ex.json?.stream !== false
    // With stream:false Ollama sends nothing until a pull is complete, which for a large model
    // takes longer than any first-byte timeout. So the instances are always asked for a stream,
    // and the single answer is assembled here, as Ollama's own waitForStream does.
    const body = progress && !streamed && ex.json !== undefined ? Buffer.from(JSON.stringify({ ...ex.json, stream: true })) : ex.body
    const sent = await this.#send(ex, instances, ex.req.method ?? 'POST', body)
    const outcomes: Outcome[] = sent.map((s) => ({
      instance: s.instance,
      status: s.reply?.statusCode,
      contentType: headerValue(s.reply?.headers['content-type']),
      ok: false,
      text: s.failure?.message ?? '',
    }))
    try {
      if (progress && outcomes.some((o) => o.status !== undefined && o.status >= 200 && o.status <= 299)) {
        await this.#mergeProgress(ex, op, sent, outcomes, streamed)
        return
      }
      await Promise.all(sent.map((s, i) => this.#readOutcome(s, outcomes[i]!)))
      if (ex.clientGone) return
      this.#logFailures(ex, outcomes)
      if (outcomes.every((o) => o.ok)) {
        // Every instance answered alike: relay the first one's answer as it is.
        const first = outcomes[0]!
        this.#answer(ex, first.status ?? 200, first.contentType, first.text)
        return
      }
      throw combinedError(op, outcomes)
    } finally {
      ex.upstream = undefined
      this.#notify(ex, sent)
    }
  }

  /**
   * Streamed: one NDJSON progress sequence for all instances, ending with success or the
   * failures. Not streamed: the instances' streams are read to their end for one JSON answer.
   */
  async #mergeProgress(ex: Exchange, op: RouteName, sent: readonly Sent[], outcomes: Outcome[], streamed: boolean): Promise<void> {
    const { res } = ex
    if (streamed) {
      res.writeHead(200, { 'content-type': NDJSON_TYPE, 'x-request-id': ex.id })
      ex.firstByteAt = performance.now()
    }
    const merge = new ProgressMerge({
      instances: sent.length,
      // Progress lines are few and small (throttled per layer): not worth holding the instances'
      // streams back for the client's backpressure.
      write: (line) => {
        if (streamed && !ex.clientGone) res.write(line)
      },
    })
    await Promise.all(
      sent.map((s, i) => {
        const outcome = outcomes[i]!
        const status = outcome.status
        if (s.reply !== undefined && status !== undefined && status >= 200 && status <= 299) {
          return this.#readProgress(s.instance, s.reply, i, merge, outcome)
        }
        return this.#readOutcome(s, outcome)
      }),
    )
    if (ex.clientGone) return
    merge.flush()
    this.#logFailures(ex, outcomes)
    if (!streamed) {
      if (outcomes.every((o) => o.ok)) this.#answer(ex, 200, JSON_TYPE, '{"status":"success"}')
      else throw combinedError(op, outcomes)
      return
    }
    if (outcomes.every((o) => o.ok)) {
      res.end('{"status":"success"}\n')
      return
    }
    // Mid-stream errors are a last line with an error key, the status stays 200 (as in Ollama).
    // Every instance failing alike (no such model in the registry, say) reads as Ollama's own.
    const alike = new Set(outcomes.map((o) => o.text)).size === 1
    ex.error = alike ? outcomes[0]!.text : failureMessage(op, outcomes)
    res.end(errorBody(ex.error, 'ollama', 200) + '\n')
  }

  async #readProgress(
    instance: Instance,
    reply: Dispatcher.ResponseData,
    index: number,
    merge: ProgressMerge,
    outcome: Outcome,
  ): Promise<void> {
    let pending = ''
    const take = (line: string): void => {
      if (line.trim() === '') return
      let value: unknown
      try {
        value = JSON.parse(line)
      } catch {
        return // not a progress line: nothing a client could use
      }
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return
      const fields = value as Record<string, unknown>
      if (fields.error !== undefined) {
        // An error in the stream: Ollama's waitForStream answers it with 500.
        outcome.status = 500
        outcome.ok = false
        outcome.text = typeof fields.error === 'string' ? fields.error : JSON.stringify(fields.error)
      } else if (fields.status === 'success') {
        outcome.ok = true
      } else merge.add(index, fields)
    }
    try {
      reply.body.setEncoding('utf8')
      for await (const chunk of reply.body as AsyncIterable<string>) {
        pending += chunk
        for (let nl = pending.indexOf('\n'); nl !== -1; nl = pending.indexOf('\n')) {
          take(pending.slice(0, nl))
          pending = pending.slice(nl + 1)
        }
      }
      take(pending)
    } catch (err) {
      if (!outcome.ok && outcome.text === '') {
        outcome.status = undefined
        outcome.text = this.#failed(instance, err).message
      }
    }
    if (!outcome.ok && outcome.text === '') {
      outcome.status = undefined
      outcome.text = 'the progress stream ended before success'
    }
  }

  /** Reads a whole (not streamed) answer into `outcome`. */
  async #readOutcome(s: Sent, outcome: Outcome): Promise<void> {
    if (s.reply === undefined) return
    const status = s.reply.statusCode
    try {
      const text = await s.reply.body.text()
      outcome.ok = status >= 200 && status <= 299
      outcome.text = outcome.ok ? text : errorMessageOf(status, text)
    } catch (err) {
      outcome.ok = false
      outcome.status = undefined
      outcome.text = this.#failed(s.instance, err).message
    }
  }

  #logFailures(ex: Exchange, outcomes: readonly Outcome[]): void {
    for (const o of outcomes) {
      if (o.ok) continue
      this.#logger.warn(
        { req: ex.id, instance: o.instance.name, route: ex.route.name, status: o.status, err: o.text },
        'model operation failed on an instance',
      )
    }
  }

  /** Tells model discovery which instances may have changed, whatever the outcome. Never throws. */
  #notify(ex: Exchange, sent: readonly Sent[]): void {
    const reached = sent.filter((s) => s.reply !== undefined).map((s) => s.instance)
    try {
      this.#modelsChanged(reached)
    } catch (err) {
      this.#logger.warn({ req: ex.id, err }, 'modelsChanged hook failed')
    }
  }

  // ---- shared ---------------------------------------------------------------------------------

  /**
   * Sends the client's request to every instance at once; resolves when each has answered with
   * headers or failed. The client leaving aborts them all (through `ex.upstream`).
   */
  async #send(ex: Exchange, instances: readonly Instance[], method: string, body = ex.body): Promise<Sent[]> {
    const controller = new AbortController()
    ex.upstream = { cancel: () => controller.abort() }
    // Gone before this point, the client's leaving found nothing to cancel.
    if (ex.clientGone) controller.abort()
    ex.attempts = instances.length
    // The request log names the instance that answered; with several, none did alone.
    if (instances.length === 1) ex.instance = instances[0]
    const headers = upstreamRequestHeaders(ex.req.headers, {
      requestId: ex.id,
      clientAddress: ex.peer,
      trustedPeer: ex.trustedPeer,
      streamedBody: false,
    })
    // Every answer is read here, never relayed as bytes: ask for it uncompressed.
    for (let i = headers.length - 2; i >= 0; i -= 2) if (headers[i] === 'accept-encoding') headers.splice(i, 2)
    return Promise.all(
      instances.map(async (instance): Promise<Sent> => {
        const settle = occupySlot(this.#slots, instance)
        try {
          const reply = await instance.pool.request({
            method,
            path: ex.target,
            headers,
            body: body !== undefined && body.length > 0 ? body : null,
            headersTimeout: this.#config.firstByteTimeoutMs,
            bodyTimeout: this.#config.idleTimeoutMs,
            signal: controller.signal,
          })
          // The part ends with its answer's body: read to its end, failed or cut by the client leaving.
          reply.body.once('close', () => {
            const err: unknown = reply.body.errored
            if (err !== null && err !== undefined && !isAbort(err)) settle(upstreamFailure(err))
            else settle(reply.statusCode >= 500 || err !== null ? undefined : 'success')
          })
          return { instance, reply }
        } catch (err) {
          const failure = this.#failed(instance, err)
          settle(isAbort(err) ? undefined : failure)
          return { instance, failure }
        }
      }),
    )
  }

  /** Maps a transport error; counts it against the instance unless the client's leaving caused it. */
  #failed(instance: Instance, err: unknown): UpstreamFailure {
    const failure = upstreamFailure(err)
    if (!isAbort(err)) {
      instance.failures++
      instance.lastError = failure.message
    }
    return failure
  }

  #answer(ex: Exchange, status: number, contentType: string | undefined, body: string): void {
    const headers: Record<string, string | number> = { 'x-request-id': ex.id }
    if (contentType !== undefined) headers['content-type'] = contentType
    ex.firstByteAt = performance.now()
    reply(ex.res, status, headers, body, { head: ex.req.method === 'HEAD' })
  }
}

/** An error caused by aborting the request ourselves (the client left). */
function isAbort(err: unknown): boolean {
  if (err === null || typeof err !== 'object') return false
  const { name, code } = err as { name?: unknown; code?: unknown }
  return name === 'AbortError' || code === 'UND_ERR_ABORTED' || code === 'ABORT_ERR'
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value
}
