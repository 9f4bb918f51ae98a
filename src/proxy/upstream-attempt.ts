/**
 * One attempt at one instance, as an undici dispatch handler. The response is relayed to the
 * client from inside undici's callbacks: no intermediate stream, no promise per chunk, and
 * backpressure goes straight from the client's socket to the instance's (pause/resume).
 */
import { performance } from 'node:perf_hooks'
import type { Dispatcher } from 'undici'
import type { AttemptReport } from '../balancer/balancer.js'
import type { Instance } from '../balancer/instance.js'
import { CorralError, statusFailure, upstreamFailure, type InstanceErrorKind, type UpstreamFailure } from '../shared/errors.js'
import type { Exchange } from '../http/exchange.js'
import { brokenStreamTail } from '../http/reply.js'
import { clientResponseHeaders } from './headers.js'

/** Error bodies are short; more than this is not kept for the final answer. */
const MAX_HELD_BODY_BYTES = 4096
const NEWLINE = 0x0a
/** Ollama's final chunk ends with its counts; this much of the body's end holds them. */
const TAIL_BYTES = 384
const EVAL_COUNT = /"eval_count":(\d+)/
const EVAL_DURATION = /"eval_duration":(\d+)/
const PROMPT_EVAL_COUNT = /"prompt_eval_count":(\d+)/
const DONE_REASON = /"done_reason":"([a-z_]{1,32})"/

type Phase = 'waiting' | 'relaying' | 'held' | 'done'

class ClientGone extends Error {
  override readonly name = 'ClientGone'
  constructor() {
    super('client went away')
  }
}

/**
 * Resolves with undefined when the response was relayed (or the client left), or with the
 * failure when the attempt failed before any byte reached the client, so another instance may
 * be tried. Never rejects.
 */
export class UpstreamAttempt implements Dispatcher.DispatchHandler, AttemptReport {
  readonly #ex: Exchange
  readonly #instance: Instance
  /** Error statuses held back (and another instance tried) instead of relayed; empty when the request cannot be re-sent. */
  readonly #retryOn: readonly number[]
  /** Whether the request is model work (generate, chat, embed...): any status in `retry_on` fails over, not only 503. */
  readonly #modelWork: boolean
  #heldStatus = 0
  readonly #resolve: (outcome: UpstreamFailure | undefined) => void
  readonly done: Promise<UpstreamFailure | undefined>
  #controller: Dispatcher.DispatchController | undefined
  #phase: Phase = 'waiting'
  #heldBody = ''
  #lastByte = NEWLINE
  #streamKind: 'ndjson' | 'sse' | 'other' = 'other'
  #waitingForDrain = false
  /** The client left while single-flight followers listened: the answer goes on, to them only. */
  #detached = false
  readonly #startedAt = performance.now()
  /** Keep the end of the body for Ollama's counts (generations answered 200 only). */
  #keepTail = false
  #tail: Buffer | undefined
  #beforeTail: Buffer | undefined
  outcome: AttemptReport['outcome'] = 'neutral'
  failureReason: string | undefined
  failureKind: InstanceErrorKind | undefined
  ok = false
  streamed = false
  ttfbMs = -1
  totalMs = 0
  evalCount = 0
  evalMs = 0
  /** Ollama's prompt_eval_count from the final chunk; 0 when absent. */
  promptEvalCount = 0
  /** Ollama's done_reason from the final chunk (`stop`, `length`, ...), if present. */
  doneReason: string | undefined
  /** Set when the attempt stopped because of the client's request (an upload over its limit): no failure of the instance. */
  refusal: CorralError | undefined
  readonly #onDrain = (): void => {
    this.#waitingForDrain = false
    this.#controller?.resume()
  }

  /** `retryOn`: the statuses `proxy.retry_on` lists (read per attempt, so a reload applies to the next request). */
  constructor(ex: Exchange, instance: Instance, retryOn: readonly number[]) {
    this.#ex = ex
    this.#instance = instance
    this.#retryOn = ex.replayable ? retryOn : []
    this.#modelWork = ex.work !== undefined
    let resolve!: (outcome: UpstreamFailure | undefined) => void
    this.done = new Promise((r) => (resolve = r))
    this.#resolve = resolve
  }

  /**
   * The client went away: cancels the upstream request, unless single-flight followers wait for
   * its answer. Then it goes on for them, no longer written to the client (nor held back by the
   * client's socket): no client sees an error because another one left.
   */
  cancel(): void {
    if (this.#ex.followed?.() !== true) {
      this.#controller?.abort(new ClientGone())
      return
    }
    this.#detached = true
    if (this.#waitingForDrain) {
      this.#waitingForDrain = false
      this.#ex.res.off('drain', this.#onDrain)
      this.#controller?.resume()
    }
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller
    // The client may have left while the request waited for a free connection.
    if (this.#ex.clientGone) this.cancel()
  }

  /** Whether the answer is written to the client: it is wanted there, and the client is still there. */
  get #relaying(): boolean {
    return this.#ex.relay && !this.#detached
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (statusCode >= 400 && (statusCode === 503 || this.#modelWork) && this.#retryOn.includes(statusCode)) {
      this.#phase = 'held'
      this.#heldStatus = statusCode
      return
    }
    const ex = this.#ex
    this.#phase = 'relaying'
    this.ttfbMs = performance.now() - this.#startedAt
    this.ok = statusCode === 200
    this.#keepTail = this.ok && ex.work === 'generation'
    if (statusCode >= 500 || statusCode === 429) {
      this.failureReason = `status ${statusCode}`
      this.failureKind = statusCode === 429 ? 'status_429' : 'status_5xx'
    }
    // An error line can only be appended to a chunked stream; a body of declared length is cut.
    if (headers['content-length'] === undefined) {
      this.streamed = true
      const type = headers['content-type']
      if (typeof type === 'string') {
        if (type.includes('ndjson')) this.#streamKind = 'ndjson'
        else if (type.includes('text/event-stream')) this.#streamKind = 'sse'
      }
    }
    ex.tap?.start(statusCode, headers)
    if (!this.#relaying) return
    ex.res.writeHead(statusCode, clientResponseHeaders(headers, ex.id))
    ex.firstByteAt = performance.now()
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#phase === 'relaying') {
      const ex = this.#ex
      if (this.#keepTail) {
        this.#beforeTail = chunk.length < TAIL_BYTES ? this.#tail : undefined
        this.#tail = chunk
      }
      ex.tap?.data(chunk)
      if (!this.#relaying) return
      this.#lastByte = chunk[chunk.length - 1] ?? this.#lastByte
      if (!ex.res.write(chunk) && !this.#waitingForDrain) {
        this.#waitingForDrain = true
        controller.pause()
        ex.res.once('drain', this.#onDrain)
      }
    } else if (this.#phase === 'held' && this.#heldBody.length < MAX_HELD_BODY_BYTES) {
      this.#heldBody += chunk.toString('utf8')
    }
  }

  onResponseEnd(): void {
    if (this.#phase === 'held') return this.#finish(this.#heldFailure())
    const ex = this.#ex
    if (this.#relaying) ex.res.end()
    ex.tap?.end()
    if (this.#keepTail) this.#readCounts()
    if (this.failureReason !== undefined) this.#countFailure(this.failureReason, this.failureKind ?? 'other')
    this.#finish(undefined)
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    const ex = this.#ex
    if (err instanceof ClientGone || (ex.clientGone && !this.#detached)) {
      ex.clientGone = true
      this.failureReason = undefined
      this.failureKind = undefined
      if (this.#phase === 'relaying') ex.tap?.abort('client went away')
      return this.#finish(undefined)
    }
    if (this.#phase === 'held') return this.#finish(this.#heldFailure())
    if (err instanceof CorralError && this.#phase === 'waiting') {
      this.refusal = err
      return this.#finish(undefined)
    }
    const failure = upstreamFailure(err)
    if (this.#phase === 'waiting') return this.#finish(failure)
    this.#countFailure(failure.message, 'cut')
    // Part of the answer is already with the client: say so in the stream, or cut it.
    const message = `upstream ${this.#instance.name} failed mid-response: ${failure.message}`
    ex.error = message
    ex.tap?.abort(message)
    if (!this.#relaying) return this.#finish(undefined)
    const { res } = ex
    res.off('drain', this.#onDrain)
    if (this.#streamKind === 'other') res.destroy()
    else res.end(brokenStreamTail(this.#streamKind, message, this.#lastByte))
    this.#finish(undefined)
  }

  /** The failure of an answer held back because its status is in `retry_on`. */
  #heldFailure(): UpstreamFailure {
    return statusFailure(this.#heldStatus, errorDetail(this.#heldBody, this.#heldStatus))
  }

  /** Settles the attempt; every failure (held statuses included) is counted against the instance once. */
  #finish(outcome: UpstreamFailure | undefined): void {
    if (this.#phase === 'done') return
    this.#phase = 'done'
    this.totalMs = performance.now() - this.#startedAt
    if (outcome !== undefined) this.#countFailure(outcome.message, outcome.kind)
    else if (this.outcome === 'neutral' && (!this.#ex.clientGone || this.#detached) && this.refusal === undefined) this.outcome = 'success'
    this.#resolve(outcome)
  }

  /** Records a failure against the instance: a failure before the first byte, a 5xx or 429 answer, or a cut stream. */
  #countFailure(message: string, kind: InstanceErrorKind): void {
    if (this.outcome === 'failure') return
    this.outcome = 'failure'
    this.failureReason = message
    this.failureKind = kind
    this.#instance.failures++
    this.#instance.lastError = message
  }

  /** Ollama's eval_count, eval_duration, prompt_eval_count and done_reason from the end of a generation's body. */
  #readCounts(): void {
    const tail = this.#tail
    if (tail === undefined) return
    // Only the last TAIL_BYTES are read: the counts close Ollama's final chunk, and scanning a
    // whole non-streamed answer would cost more than the rest of the relay's bookkeeping.
    const before = this.#beforeTail
    const end =
      before === undefined || tail.length >= TAIL_BYTES
        ? tail.toString('latin1', Math.max(0, tail.length - TAIL_BYTES))
        : before.toString('latin1', Math.max(0, before.length - (TAIL_BYTES - tail.length))) + tail.toString('latin1')
    const reason = DONE_REASON.exec(end)
    if (reason !== null) this.doneReason = reason[1]
    const prompt = PROMPT_EVAL_COUNT.exec(end)
    if (prompt !== null) this.promptEvalCount = Number(prompt[1])
    const count = EVAL_COUNT.exec(end)
    const duration = EVAL_DURATION.exec(end)
    if (count === null || duration === null) return
    this.evalCount = Number(count[1])
    this.evalMs = Number(duration[1]) / 1e6
  }
}

/** Ollama's reason from an error body (`{"error": "server busy ..."}`), or its text. */
function errorDetail(body: string, status: number): string {
  try {
    const parsed = JSON.parse(body) as { error?: unknown }
    if (typeof parsed.error === 'string') return parsed.error
    // OpenAI's shape on /v1: {"error": {"message": ...}}
    const nested = parsed.error as { message?: unknown } | undefined
    if (typeof nested?.message === 'string') return nested.message
  } catch {
    // not JSON: use the text itself
  }
  return body.trim().slice(0, 200) || (status === 503 ? 'service unavailable' : `status ${status}`)
}
