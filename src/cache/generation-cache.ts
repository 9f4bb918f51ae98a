/**
 * The cache of generations (`/api/generate`, `/api/chat` and their `/v1` twins): a whole answer
 * per request, replayed in the shape asked for (stream or not), and single flight, within this
 * process and across replicas, for identical requests in flight.
 */
import { performance } from 'node:perf_hooks'
import type { Exchange } from '../http/exchange.js'
import { JSON_TYPE, NDJSON_TYPE, SSE_TYPE, brokenStreamTail } from '../http/reply.js'
import { AnswerRecord } from './answer-record.js'
import { untilClientGone, type CacheContext, type CacheStatus } from './cache-context.js'
import { requestBasis, requestKey } from './cache-key.js'
import type { AnswerPlan } from './cache-policy.js'
import type { CacheEntry } from './cache-store.js'
import { OpenAIAnswer } from './openai-answer.js'
import type { ReplicaFlight } from './replica-flight.js'
import type { Forward } from './request-cache.js'
import { ResponseCapture } from './response-capture.js'
import { SingleFlight, type Flight, type FlightObserver } from './single-flight.js'

/** What a generation flight hands its followers: the stored entry (value and decoded view). */
type AnswerResult = CacheEntry

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

export class GenerationCache {
  readonly #ctx: CacheContext
  readonly #answers = new SingleFlight<AnswerResult>()
  /** Single flight of generations across replicas, when on. */
  readonly #replicas: ReplicaFlight | undefined

  constructor(ctx: CacheContext, replicas: ReplicaFlight | undefined) {
    this.#ctx = ctx
    this.#replicas = replicas
  }

  async handle(ex: Exchange, forward: Forward, plan: AnswerPlan, model: string, digest: string | undefined): Promise<void> {
    const key = this.#ctx.keys.entry('inference', model, requestKey(requestBasis(plan.family, model, digest, ex.json!, undefined, this.#ctx.partitionOf(ex))))
    if (plan.lookup) {
      const entry = (await this.#ctx.store.get(key)) ?? this.#ctx.writer.landing(key)
      if (entry !== undefined && this.#replayAnswer(ex, plan, entry, 'hit')) {
        this.#ctx.stats.hit('inference')
        return
      }
    }
    this.#ctx.stats.miss('inference')
    const flight = this.#ctx.config.singleFlight ? this.#answers.get(key) : undefined
    if (flight !== undefined) return this.#followAnswer(ex, forward, plan, key, flight)
    return this.#leadAnswer(ex, forward, plan, key, this.#ctx.config.singleFlight)
  }

  async #leadAnswer(ex: Exchange, forward: Forward, plan: AnswerPlan, key: string, coalesce: boolean): Promise<void> {
    const flight = coalesce ? this.#answers.lead(key) : undefined
    // Across replicas: this replica's flight (its local followers follow it) first waits for an
    // identical generation another replica is running, and replays its answer when it lands.
    let claimed = false
    if (flight !== undefined && this.#replicas !== undefined) {
      const turn = await this.#replicas.turn(key)
      if (typeof turn === 'object') {
        if (this.#replayAnswer(ex, plan, turn, 'coalesced')) {
          this.#ctx.stats.coalesced++
          this.#answers.land(key, flight, turn)
          return
        }
      } else {
        claimed = turn === 'claimed'
      }
    }
    const capture = new ResponseCapture(this.#ctx.config.maxEntryBytes, flight)
    if (flight !== undefined) {
      flight.capture = capture
      // Followers keep the upstream request going if this request's own client leaves.
      ex.followed = () => flight.listened
    }
    this.#ctx.mark(ex, 'miss')
    ex.tap = capture
    let entry: CacheEntry | undefined
    try {
      await forward(ex)
      entry = this.#answerEntry(plan, capture)
    } finally {
      ex.tap = undefined
      ex.followed = undefined
      if (flight !== undefined) this.#answers.land(key, flight, entry)
      const written = entry === undefined ? undefined : this.#ctx.writer.write('inference', key, entry)
      // The lock goes once the answer is in the store (waiting replicas find it there), or at
      // once when there is nothing to store (one of them takes over).
      if (claimed) void (written ?? Promise.resolve()).then(() => this.#replicas!.release(key))
    }
  }

  /** The entry to store for a captured generation, or undefined when it must not be stored. */
  #answerEntry(plan: AnswerPlan, capture: ResponseCapture): CacheEntry | undefined {
    if (capture.status !== 200) return undefined
    const body = capture.body()
    if (body === undefined) return undefined
    if (plan.family === 'openai_chat' || plan.family === 'openai_completions') {
      const answer = capture.contentType.includes('text/event-stream')
        ? OpenAIAnswer.fromStream(body.toString('utf8'), plan.family === 'openai_chat')
        : OpenAIAnswer.fromBody(body)
      return answer === undefined ? undefined : { value: answer.encode(), view: answer }
    }
    const streamed = capture.contentType.includes('ndjson')
    const record = AnswerRecord.fromAnswer(plan.family === 'chat' ? 'chat' : 'generate', body.toString('utf8'), streamed)
    return record === undefined ? undefined : { value: record.encode(), view: record }
  }

  /** Answers from a stored generation; false when the value is not one (the request then misses). */
  #replayAnswer(ex: Exchange, plan: AnswerPlan, entry: CacheEntry, status: CacheStatus): boolean {
    if (plan.family === 'openai_chat' || plan.family === 'openai_completions') {
      const answer = (entry.view ??= OpenAIAnswer.decode(entry.value)) as OpenAIAnswer | undefined
      if (!(answer instanceof OpenAIAnswer)) return false
      if (!plan.stream) {
        this.#ctx.send(ex, 200, JSON_TYPE, answer.body, status)
        return true
      }
      const options = ex.json?.stream_options
      const sse = answer.sse(isObject(options) && options.include_usage === true)
      if (sse === undefined) return false
      this.#ctx.send(ex, 200, SSE_TYPE, sse, status)
      return true
    }
    const record = (entry.view ??= AnswerRecord.decode(entry.value)) as AnswerRecord | undefined
    if (!(record instanceof AnswerRecord)) return false
    const modelJson = JSON.stringify(ex.model)
    const createdAt = new Date().toISOString()
    if (plan.stream) this.#ctx.send(ex, 200, NDJSON_TYPE, record.stream(modelJson, createdAt), status)
    else this.#ctx.send(ex, 200, JSON_TYPE, record.whole(modelJson, createdAt), status)
    return true
  }

  /**
   * Follows the identical request in flight. A streamed follower of a streamed leader receives
   * the leader's chunks as they arrive; every other follower waits for the stored answer and
   * replays it. When the leader fails before this follower sent anything, the followers go
   * upstream: the first becomes the new leader and the others follow it (once; after a second
   * failure each goes alone).
   */
  async #followAnswer(
    ex: Exchange,
    forward: Forward,
    plan: AnswerPlan,
    key: string,
    flight: Flight<AnswerResult>,
    rejoin = true,
  ): Promise<void> {
    if (rejoin) this.#ctx.stats.coalesced++
    if (plan.stream) {
      await untilClientGone(ex, flight.settledOrStarted('started'))
      if (ex.clientGone) return
      const capture = flight.capture
      if (
        flight.state === 'running' &&
        capture !== undefined &&
        capture.status === 200 &&
        capture.contentType.includes('ndjson') &&
        !capture.overflow
      ) {
        return this.#streamAlong(ex, flight, capture)
      }
    }
    await untilClientGone(ex, flight.settledOrStarted('settled'))
    if (ex.clientGone) return
    if (flight.result !== undefined && this.#replayAnswer(ex, plan, flight.result, 'coalesced')) return
    const next = rejoin ? this.#answers.get(key) : undefined
    if (next !== undefined) return this.#followAnswer(ex, forward, plan, key, next, false)
    return this.#leadAnswer(ex, forward, plan, key, rejoin)
  }

  /** Relays the leader's NDJSON stream: what it has so far, then each chunk as it comes. */
  async #streamAlong(ex: Exchange, flight: Flight<AnswerResult>, capture: ResponseCapture): Promise<void> {
    const { res } = ex
    const sofar = capture.chunks
    res.writeHead(200, this.#ctx.headers(ex, NDJSON_TYPE, 'coalesced'))
    ex.firstByteAt = performance.now()
    for (const chunk of sofar) res.write(chunk)
    let lastByte = sofar.at(-1)?.at(-1)
    await new Promise<void>((resolve) => {
      const observer: FlightObserver = {
        started: () => {},
        data: (chunk) => {
          lastByte = chunk.at(-1)
          res.write(chunk)
        },
        settled: () => done(),
      }
      const done = (): void => {
        flight.unobserve(observer)
        res.off('close', done)
        resolve()
      }
      flight.observe(observer)
      res.once('close', done)
      if (flight.state !== 'running') done()
    })
    if (ex.clientGone || res.writableEnded) return
    // The follower got exactly the leader's bytes: complete when the leader's were (stored or not).
    if (capture.ended && !capture.aborted) {
      res.end()
    } else {
      // The leader's answer broke after this follower had part of it: say so, as the proxy does.
      ex.error = 'the coalesced answer failed mid-response'
      res.end(brokenStreamTail('ndjson', ex.error, lastByte))
    }
  }
}
