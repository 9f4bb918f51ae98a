/**
 * The cache on the request path (the `RequestCache` the proxy calls): looks a request up, replays
 * hits in the shape asked for, coalesces identical requests in flight, and captures misses to
 * store them after the response is done. Embedding requests are cached per input item, and a
 * batch with some items cached sends only the others upstream.
 */
import type { OutgoingHttpHeaders } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { Logger } from 'pino'
import type { CacheConfig, CacheLayerName } from '../config/config.js'
import { JSON_TYPE, NDJSON_TYPE, SSE_TYPE, brokenStreamTail, errorBody, reply } from '../http/reply.js'
import type { Exchange } from '../http/exchange.js'
import { AnswerRecord } from './answer-record.js'
import { itemKey, KeySpace, requestBasis, requestKey } from './cache-key.js'
import { canonicalModel } from '../shared/model-name.js'
import { planFor, type AnswerPlan, type VectorPlan } from './cache-policy.js'
import { CacheStats, type CacheStatsReport } from './cache-stats.js'
import type { CacheEntry, CacheStore } from './cache-store.js'
import { OpenAIAnswer } from './openai-answer.js'
import type { Forward, RequestCache } from './request-cache.js'
import { ResponseCapture } from './response-capture.js'
import { ReplicaFlight } from './replica-flight.js'
import { SingleFlight, type Flight, type FlightObserver } from './single-flight.js'
import { RenderedVectors } from './rendered-vectors.js'
import { StoredVector } from './vector-codec.js'
import { VectorCapture, type VectorWrite } from './vector-capture.js'
import { WriteBehind } from './write-behind.js'

export interface OllamaCacheDeps {
  config: CacheConfig
  store: CacheStore
  /** Prefix of every stored key (`redis.key_prefix`, or `corral:` for the memory store). */
  keyPrefix: string
  /** The digest of a model from discovery (keys include it), or undefined while unknown. */
  digestOf: (model: string) => string | undefined
  logger: Logger
  /**
   * Single flight across replicas (`redis.single_flight`): the lock TTL in ms, or undefined when
   * off. Needs `cache.single_flight`.
   */
  replicaLockTtlMs?: number | undefined
  /** Bytes of process memory for the rendered text of hot vectors (0: render every hit). Default 0. */
  renderedBytes?: number
}

/** `X-Corral-Cache` values. */
type CacheStatus = 'hit' | 'miss' | 'bypass' | 'coalesced'

/** What a generation flight hands its followers: the stored entry (value and decoded view). */
type AnswerResult = CacheEntry
/** What an embedding flight hands its followers: the fetched vectors by item key. */
interface VectorResult {
  get(key: string): StoredVector | undefined
}

/** An embedding answer corral must assemble is read whole whatever its size; above this it fails. */
const MAX_ASSEMBLED_BYTES = 256 * 1024 * 1024
/**
 * Captured embedding answers waiting to be stored may hold this much memory; a capture that does
 * not fit is not stored (counted as skipped). About fifty 32-chunk batches of 768-d vectors, half
 * a second of a fast ingestion: enough to ride out a burst, bounded while corral is saturated.
 */
const WRITE_QUEUE_BYTES = 16 * 1024 * 1024
/** Store writes awaiting their acknowledgement (a slow Redis); beyond it new writes are skipped. */
const MAX_PENDING_WRITES = 4096

const EMBEDDING_HEAD = Buffer.from('{"embedding":')
const OPENAI_HEAD = Buffer.from('{"object":"list","data":[')
const CLOSE_BRACE = Buffer.from('}')
const COMMA = Buffer.from(',')

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

export class OllamaCache implements RequestCache {
  #config: CacheConfig
  readonly #store: CacheStore
  readonly #keys: KeySpace
  readonly #digestOf: (model: string) => string | undefined
  readonly #logger: Logger
  readonly #stats = new CacheStats()
  readonly #answers = new SingleFlight<AnswerResult>()
  /** Single flight of generations across replicas, when on. */
  readonly #replicas: ReplicaFlight | undefined
  readonly #vectors = new SingleFlight<VectorResult>()
  /** Writes not yet acknowledged by the store (awaited by `settle()` and `close()`). */
  readonly #pending = new Set<Promise<unknown>>()
  /**
   * Entries being written, by key, until the store acknowledges them: a request whose (remote)
   * lookup was sent before the write landed finds the answer here instead of going upstream.
   */
  readonly #landing = new Map<string, CacheEntry>()
  /** Captured embedding answers waiting for the writer, by item key: lookups find their vectors there. */
  readonly #queued = new Map<string, VectorCapture>()
  /** Capture work off the answers' path. */
  readonly #writer = new WriteBehind({ maxQueuedBytes: WRITE_QUEUE_BYTES })
  readonly #rendered: RenderedVectors

  constructor(deps: OllamaCacheDeps) {
    this.#config = deps.config
    this.#store = deps.store
    this.#keys = new KeySpace(deps.keyPrefix)
    this.#digestOf = deps.digestOf
    this.#logger = deps.logger
    this.#replicas = deps.replicaLockTtlMs === undefined ? undefined : new ReplicaFlight(deps.store, this.#keys, deps.replicaLockTtlMs)
    this.#rendered = new RenderedVectors(deps.renderedBytes ?? 0)
  }

  /**
   * New settings from a reload: layers, TTLs, policy, single flight, the response header and
   * the entry size limit apply to requests from now on (entries already stored keep their TTL).
   */
  reconfigure(config: CacheConfig): void {
    this.#config = config
  }

  /** How long a new entry of `layer` is kept, in ms. */
  ttlMs(layer: CacheLayerName): number {
    return this.#config.layers[layer].ttlMs
  }

  get store(): CacheStore {
    return this.#store
  }

  get keys(): KeySpace {
    return this.#keys
  }

  async handle(ex: Exchange, forward: Forward): Promise<void> {
    const plan = planFor(this.#config, ex.route.name, ex.req.method, ex.req.headers, ex.json, ex.model)
    if (plan === undefined) return forward(ex)
    if (plan.kind === 'bypass') {
      this.#stats.bypassed++
      this.#mark(ex, 'bypass')
      return forward(ex)
    }
    const model = ex.modelKey ?? canonicalModel(ex.model!)
    const digest = this.#digestOf(model)
    // Until discovery has seen the model, corral cannot tell a re-pulled model from the one an
    // entry was made with: no lookup, no store (moments after start, or a model no instance has).
    if (digest === undefined) {
      this.#stats.bypassed++
      this.#mark(ex, 'bypass')
      return forward(ex)
    }
    if (plan.kind === 'answer') return this.#answer(ex, forward, plan, model, digest)
    return this.#embed(ex, forward, plan, model, digest)
  }

  /** Resolves when the store is up (Redis connected; at once in memory); rejects after `timeoutMs`. */
  whenStoreUp(timeoutMs = 5000): Promise<void> {
    return this.#store.whenUp?.(timeoutMs) ?? Promise.resolve()
  }

  /** The stats report (`GET /api/advanced-cache-stats`). */
  report(): CacheStatsReport {
    return this.#stats.report(this.#config, this.#store)
  }

  /** Stores every captured answer now and resolves when the store has acknowledged every write (tests, shutdown). */
  async settle(): Promise<void> {
    this.#writer.drain()
    while (this.#pending.size > 0) await Promise.all([...this.#pending])
  }

  async close(): Promise<void> {
    await this.settle()
    this.#writer.close()
    this.#rendered.clear()
    await this.#store.close()
  }

  // ---- generations ---------------------------------------------------------------------------

  async #answer(ex: Exchange, forward: Forward, plan: AnswerPlan, model: string, digest: string | undefined): Promise<void> {
    const key = this.#keys.entry('inference', model, requestKey(requestBasis(plan.family, model, digest, ex.json!, undefined, this.#partitionOf(ex))))
    if (plan.lookup) {
      const entry = (await this.#store.get(key)) ?? this.#landing.get(key)
      if (entry !== undefined && this.#replayAnswer(ex, plan, entry, 'hit')) {
        this.#stats.hit('inference')
        return
      }
    }
    this.#stats.miss('inference')
    const flight = this.#config.singleFlight ? this.#answers.get(key) : undefined
    if (flight !== undefined) return this.#followAnswer(ex, forward, plan, key, flight)
    return this.#leadAnswer(ex, forward, plan, key, this.#config.singleFlight)
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
          this.#stats.coalesced++
          this.#answers.land(key, flight, turn)
          return
        }
      } else {
        claimed = turn === 'claimed'
      }
    }
    const capture = new ResponseCapture(this.#config.maxEntryBytes, flight)
    if (flight !== undefined) {
      flight.capture = capture
      // Followers keep the upstream request going if this request's own client leaves.
      ex.followed = () => flight.listened
    }
    this.#mark(ex, 'miss')
    ex.tap = capture
    let entry: CacheEntry | undefined
    try {
      await forward(ex)
      entry = this.#answerEntry(plan, capture)
    } finally {
      ex.tap = undefined
      ex.followed = undefined
      if (flight !== undefined) this.#answers.land(key, flight, entry)
      const written = entry === undefined ? undefined : this.#write('inference', key, entry)
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
        this.#send(ex, 200, JSON_TYPE, answer.body, status)
        return true
      }
      const options = ex.json?.stream_options
      const sse = answer.sse(isObject(options) && options.include_usage === true)
      if (sse === undefined) return false
      this.#send(ex, 200, SSE_TYPE, sse, status)
      return true
    }
    const record = (entry.view ??= AnswerRecord.decode(entry.value)) as AnswerRecord | undefined
    if (!(record instanceof AnswerRecord)) return false
    const modelJson = JSON.stringify(ex.model)
    const createdAt = new Date().toISOString()
    if (plan.stream) this.#send(ex, 200, NDJSON_TYPE, record.stream(modelJson, createdAt), status)
    else this.#send(ex, 200, JSON_TYPE, record.whole(modelJson, createdAt), status)
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
    if (rejoin) this.#stats.coalesced++
    if (plan.stream) {
      await this.#untilClientGone(ex, flight.settledOrStarted('started'))
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
    await this.#untilClientGone(ex, flight.settledOrStarted('settled'))
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
    res.writeHead(200, this.#headers(ex, NDJSON_TYPE, 'coalesced'))
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

  // ---- embeddings ----------------------------------------------------------------------------

  async #embed(ex: Exchange, forward: Forward, plan: VectorPlan, model: string, digest: string | undefined): Promise<void> {
    const basis = requestBasis(plan.family, model, digest, ex.json!, plan.field, this.#partitionOf(ex))
    const { inputs, layer } = plan
    const basisKey = requestKey(basis)
    const keys = inputs.map((input) => this.#keys.entry(layer, model, itemKey(basisKey, input)))
    const found: (StoredVector | undefined)[] = new Array<StoredVector | undefined>(inputs.length)
    let missing = inputs.length
    if (plan.lookup) {
      const looked = this.#lookupVectors(keys, found)
      missing = typeof looked === 'number' ? looked : await looked
    }
    if (missing === 0) {
      this.#stats.hit(layer)
      this.#sendVectors(ex, plan, keys, found as StoredVector[], 0, 'hit')
      return
    }
    this.#stats.miss(layer)
    // The distinct missing items, in order: each is sent upstream once.
    const fetch = new Map<string, string>()
    for (let i = 0; i < inputs.length; i++) if (found[i] === undefined) fetch.set(keys[i]!, inputs[i]!)
    // In-process only: the item keys themselves (a Map hashes the string once), no digest.
    const flightKey = `${layer}\n${[...fetch.keys()].join('\n')}`
    const flight = this.#config.singleFlight ? this.#vectors.get(flightKey) : undefined
    if (flight !== undefined) {
      this.#stats.coalesced++
      await this.#untilClientGone(ex, flight.settledOrStarted('settled'))
      if (ex.clientGone) return
      if (flight.result !== undefined && this.#fill(keys, found, flight.result)) {
        this.#sendVectors(ex, plan, keys, found as StoredVector[], 0, 'coalesced')
        return
      }
    }
    return this.#fetchVectors(ex, forward, plan, keys, found, fetch, flight === undefined && this.#config.singleFlight ? flightKey : undefined)
  }

  /**
   * Looks every item up; gives how many are missing, at once when the store answered from memory
   * (no promise on the hit path), else when every lookup (run concurrently) is back.
   */
  #lookupVectors(keys: readonly string[], found: (StoredVector | undefined)[]): number | Promise<number> {
    let pending: Promise<void>[] | undefined
    for (let i = 0; i < keys.length; i++) {
      const got = this.#store.get(keys[i]!)
      if (got instanceof Promise) {
        ;(pending ??= []).push(got.then((entry) => void (found[i] = this.#vectorOf(keys[i]!, entry))))
      } else {
        found[i] = this.#vectorOf(keys[i]!, got)
      }
    }
    const count = (): number => {
      let missing = 0
      for (let i = 0; i < keys.length; i++) if (found[i] === undefined) missing++
      return missing
    }
    return pending === undefined ? count() : Promise.all(pending).then(count)
  }

  /**
   * The vector of `key`: the store's entry, else one being written, else one of a captured answer
   * still waiting for the writer.
   */
  #vectorOf(key: string, entry: CacheEntry | undefined): StoredVector | undefined {
    if (entry !== undefined) return vectorOf(entry)
    if (this.#landing.size > 0) {
      const landing = this.#landing.get(key)
      if (landing !== undefined) return vectorOf(landing)
    }
    return this.#queued.size === 0 ? undefined : this.#queued.get(key)?.get(key)
  }

  /** Fills the missing items from a flight's result; false when some are still missing. */
  #fill(keys: readonly string[], found: (StoredVector | undefined)[], result: VectorResult): boolean {
    for (let i = 0; i < keys.length; i++) {
      found[i] ??= result.get(keys[i]!)
      if (found[i] === undefined) return false
    }
    return true
  }

  /**
   * Sends the missing items upstream. When they are the whole request (nothing cached, no
   * repeats) the instance's answer is relayed as it is, and its chunks are kept (no copy) for the
   * write-behind queue to store; otherwise corral sends only the missing items, in one request,
   * and assembles the answer from the cached vectors and the instance's own texts of the others.
   */
  async #fetchVectors(
    ex: Exchange,
    forward: Forward,
    plan: VectorPlan,
    keys: readonly string[],
    found: (StoredVector | undefined)[],
    fetch: ReadonlyMap<string, string>,
    flightKey: string | undefined,
  ): Promise<void> {
    const relay = fetch.size === plan.inputs.length
    const flight = flightKey === undefined ? undefined : this.#vectors.lead(flightKey)
    if (flight !== undefined) ex.followed = () => flight.listened
    const capture = new ResponseCapture(relay ? this.#config.maxEntryBytes * 16 : MAX_ASSEMBLED_BYTES, undefined, 'reference')
    const sent = [...fetch.values()]
    if (!relay) {
      ex.body = Buffer.from(JSON.stringify({ ...ex.json, [plan.field]: plan.field === 'prompt' ? sent[0] : sent }))
      ex.relay = false
    }
    this.#mark(ex, 'miss')
    ex.tap = capture
    let job: VectorCapture | undefined
    try {
      await forward(ex)
      if (capture.status === 200 && capture.whole) {
        const captured: VectorCapture = new VectorCapture(
          plan,
          capture.chunks,
          [...fetch.keys()],
          sent,
          (writes) => this.#writeVectors(plan.layer, writes),
          () => this.#unqueue(captured),
        )
        job = captured
      }
    } finally {
      ex.tap = undefined
      ex.followed = undefined
      if (flight !== undefined) this.#vectors.land(flightKey!, flight, job)
    }
    if (!relay && !ex.clientGone) this.#answerAssembled(ex, plan, keys, found, capture, job)
    if (job !== undefined) this.#queue(plan.layer, job)
  }

  /** Hands a captured answer to the write-behind queue, or skips it (counted) when the queue is full. */
  #queue(layer: CacheLayerName, job: VectorCapture): void {
    if (!this.#writer.add(job)) {
      this.#stats.skipped(layer, 'overload', job.keys.length)
      job.drop()
      return
    }
    for (const key of job.keys) this.#queued.set(key, job)
  }

  #unqueue(job: VectorCapture): void {
    for (const key of job.keys) if (this.#queued.get(key) === job) this.#queued.delete(key)
  }

  /** Writes a captured answer's vectors: issued together, so Redis gets them in one pipelined round trip. */
  #writeVectors(layer: CacheLayerName, writes: readonly VectorWrite[]): void {
    for (const { key, value } of writes) void this.#write(layer, key, { value, view: undefined })
  }

  /** Corral answers itself: the instance's failure as it came, or the assembled answer. */
  #answerAssembled(
    ex: Exchange,
    plan: VectorPlan,
    keys: readonly string[],
    found: (StoredVector | undefined)[],
    capture: ResponseCapture,
    job: VectorCapture | undefined,
  ): void {
    if (job === undefined || job.vectors() === undefined || !this.#fill(keys, found, job)) {
      const body = capture.body()
      if (capture.status !== 200 && body !== undefined) {
        this.#send(ex, capture.status, capture.contentType || JSON_TYPE, body, 'miss')
      } else {
        const message = ex.error ?? 'the instance answered with an unreadable embedding response'
        this.#send(ex, 502, JSON_TYPE, errorBody(message, ex.route.dialect, 502), 'miss')
      }
      return
    }
    this.#sendVectors(ex, plan, keys, found as StoredVector[], job.loadNs, 'miss')
  }

  /**
   * Writes an embedding answer in the route's shape, from vectors in request order. The vectors'
   * JSON bytes are copied into one buffer between short heads and tails: no number is rendered
   * and no large string encoded per hit.
   */
  #sendVectors(ex: Exchange, plan: VectorPlan, keys: readonly string[], vectors: readonly StoredVector[], loadNs: number, status: CacheStatus): void {
    let tokens = 0
    for (const v of vectors) tokens += v.tokens
    const parts: Buffer[] = []
    if (plan.family === 'embeddings') {
      parts.push(EMBEDDING_HEAD, this.#rendered.json(keys[0]!, vectors[0]!), CLOSE_BRACE)
    } else if (plan.family === 'embed') {
      parts.push(Buffer.from(`{"model":${JSON.stringify(ex.model)},"embeddings":[`))
      for (let i = 0; i < vectors.length; i++) {
        if (i > 0) parts.push(COMMA)
        parts.push(this.#rendered.json(keys[i]!, vectors[i]!))
      }
      const totalNs = Math.round((performance.now() - ex.startedAt) * 1e6)
      parts.push(Buffer.from(`],"total_duration":${totalNs},"load_duration":${loadNs},"prompt_eval_count":${tokens}}`))
    } else {
      const base64 = typeof ex.json?.encoding_format === 'string' && ex.json.encoding_format.toLowerCase() === 'base64'
      parts.push(OPENAI_HEAD)
      for (let i = 0; i < vectors.length; i++) {
        const v = vectors[i]!
        parts.push(Buffer.from(`${i === 0 ? '' : ','}{"object":"embedding","embedding":`))
        parts.push(base64 ? Buffer.from(`"${v.base64()}"`) : this.#rendered.json(keys[i]!, v))
        parts.push(Buffer.from(`,"index":${i}}`))
      }
      parts.push(Buffer.from(`],"model":${JSON.stringify(ex.model)},"usage":{"prompt_tokens":${tokens},"total_tokens":${tokens}}}`))
    }
    this.#send(ex, 200, JSON_TYPE, Buffer.concat(parts), status)
  }

  // ---- shared --------------------------------------------------------------------------------

  /**
   * Stores an entry off the response path; counted when the store acknowledges it. The promise
   * settles when the store has answered (never rejects); undefined when the entry is too large.
   */
  #write(layer: CacheLayerName, key: string, entry: CacheEntry): Promise<void> | undefined {
    const ttlMs = this.#config.layers[layer].ttlMs
    if (entry.value.length > this.#config.maxEntryBytes) return undefined
    if (this.#pending.size >= MAX_PENDING_WRITES) {
      this.#stats.skipped(layer, 'store', 1)
      return undefined
    }
    this.#landing.set(key, entry)
    const write = this.#store.set(key, entry.value, ttlMs, entry.view).then(
      (stored) => {
        if (stored) this.#stats.wrote(layer)
        else this.#stats.skipped(layer, 'store', 1)
      },
      (err: unknown) => this.#logger.error({ err, key }, 'cache write failed'),
    )
    this.#pending.add(write)
    void write.finally(() => {
      this.#pending.delete(write)
      if (this.#landing.get(key) === entry) this.#landing.delete(key)
    })
    return write
  }

  /** Waits for `promise`, or less if the client goes away first. */
  #untilClientGone(ex: Exchange, promise: Promise<void>): Promise<void> {
    if (ex.clientGone) return Promise.resolve()
    return new Promise((resolve) => {
      const gone = (): void => resolve()
      ex.res.once('close', gone)
      void promise.then(() => {
        ex.res.off('close', gone)
        resolve()
      })
    })
  }

  /** The caller's cache partition (entry keys and flight keys derive from it); '' when keys share. */
  #partitionOf(ex: Exchange): string {
    return this.#config.shareAcrossKeys ? '' : ex.cachePartition
  }

  #mark(ex: Exchange, status: CacheStatus): void {
    ex.cache = status
    if (this.#config.responseHeader) ex.res.setHeader('x-corral-cache', status)
  }

  #headers(ex: Exchange, type: string, status: CacheStatus): OutgoingHttpHeaders {
    ex.cache = status
    const headers: OutgoingHttpHeaders = { 'content-type': type, 'x-request-id': ex.id }
    if (this.#config.responseHeader) headers['x-corral-cache'] = status
    return headers
  }

  /** A whole answer: headers and body leave together. */
  #send(ex: Exchange, code: number, type: string, body: string | Buffer, status: CacheStatus): void {
    ex.firstByteAt = performance.now()
    reply(ex.res, code, this.#headers(ex, type, status), body)
  }
}

function vectorOf(entry: CacheEntry | undefined): StoredVector | undefined {
  if (entry === undefined) return undefined
  if (entry.view instanceof StoredVector) return entry.view
  const vector = StoredVector.decode(entry.value)
  entry.view = vector
  return vector
}
