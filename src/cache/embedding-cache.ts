/**
 * The cache of embeddings (`/api/embed`, `/api/embeddings`, `/v1/embeddings`), per input item: a
 * batch with some items cached sends only the others upstream, and corral assembles the answer
 * from the stored vectors' JSON bytes.
 */
import { performance } from 'node:perf_hooks'
import type { Exchange } from '../http/exchange.js'
import { JSON_TYPE, errorBody } from '../http/reply.js'
import { untilClientGone, type CacheContext, type CacheStatus } from './cache-context.js'
import { itemKey, requestBasis, requestKey } from './cache-key.js'
import type { VectorPlan } from './cache-policy.js'
import type { CacheEntry } from './cache-store.js'
import type { RenderedVectors } from './rendered-vectors.js'
import type { Forward } from './request-cache.js'
import { ResponseCapture } from './response-capture.js'
import { SingleFlight } from './single-flight.js'
import { StoredVector } from './vector-codec.js'
import { VectorCapture } from './vector-capture.js'

/** What an embedding flight hands its followers: the fetched vectors by item key. */
interface VectorResult {
  get(key: string): StoredVector | undefined
}

/** An embedding answer corral must assemble is read whole whatever its size; above this it fails. */
const MAX_ASSEMBLED_BYTES = 256 * 1024 * 1024

const EMBEDDING_HEAD = Buffer.from('{"embedding":')
const OPENAI_HEAD = Buffer.from('{"object":"list","data":[')
const CLOSE_BRACE = Buffer.from('}')
const COMMA = Buffer.from(',')

export class EmbeddingCache {
  readonly #ctx: CacheContext
  readonly #vectors = new SingleFlight<VectorResult>()
  readonly #rendered: RenderedVectors

  constructor(ctx: CacheContext, rendered: RenderedVectors) {
    this.#ctx = ctx
    this.#rendered = rendered
  }

  async handle(ex: Exchange, forward: Forward, plan: VectorPlan, model: string, digest: string | undefined): Promise<void> {
    const basis = requestBasis(plan.family, model, digest, ex.json!, plan.field, this.#ctx.partitionOf(ex))
    const { inputs, layer } = plan
    const basisKey = requestKey(basis)
    const keys = inputs.map((input) => this.#ctx.keys.entry(layer, model, itemKey(basisKey, input)))
    const found: (StoredVector | undefined)[] = new Array<StoredVector | undefined>(inputs.length)
    let missing = inputs.length
    if (plan.lookup) {
      const looked = this.#lookupVectors(keys, found)
      missing = typeof looked === 'number' ? looked : await looked
    }
    if (missing === 0) {
      this.#ctx.stats.hit(layer)
      this.#sendVectors(ex, plan, keys, found as StoredVector[], 0, 'hit')
      return
    }
    this.#ctx.stats.miss(layer)
    // The distinct missing items, in order: each is sent upstream once.
    const fetch = new Map<string, string>()
    for (let i = 0; i < inputs.length; i++) if (found[i] === undefined) fetch.set(keys[i]!, inputs[i]!)
    // In-process only: the item keys themselves (a Map hashes the string once), no digest.
    const flightKey = `${layer}\n${[...fetch.keys()].join('\n')}`
    const flight = this.#ctx.config.singleFlight ? this.#vectors.get(flightKey) : undefined
    if (flight !== undefined) {
      this.#ctx.stats.coalesced++
      await untilClientGone(ex, flight.settledOrStarted('settled'))
      if (ex.clientGone) return
      if (flight.result !== undefined && this.#fill(keys, found, flight.result)) {
        this.#sendVectors(ex, plan, keys, found as StoredVector[], 0, 'coalesced')
        return
      }
    }
    return this.#fetchVectors(ex, forward, plan, keys, found, fetch, flight === undefined && this.#ctx.config.singleFlight ? flightKey : undefined)
  }

  /**
   * Looks every item up; gives how many are missing, at once when the store answered from memory
   * (no promise on the hit path), else when every lookup (run concurrently) is back.
   */
  #lookupVectors(keys: readonly string[], found: (StoredVector | undefined)[]): number | Promise<number> {
    let pending: Promise<void>[] | undefined
    for (let i = 0; i < keys.length; i++) {
      const got = this.#ctx.store.get(keys[i]!)
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
    const landing = this.#ctx.writer.landing(key)
    if (landing !== undefined) return vectorOf(landing)
    return this.#ctx.writer.queuedVector(key)
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
    const capture = new ResponseCapture(relay ? this.#ctx.config.maxEntryBytes * 16 : MAX_ASSEMBLED_BYTES, undefined, 'reference')
    const sent = [...fetch.values()]
    if (!relay) {
      ex.json = { ...ex.json, [plan.field]: plan.field === 'prompt' ? sent[0] : sent }
      ex.body = Buffer.from(JSON.stringify(ex.json))
      ex.relay = false
    }
    this.#ctx.mark(ex, 'miss')
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
          (writes) => this.#ctx.writer.writeVectors(plan.layer, writes),
          () => this.#ctx.writer.unqueue(captured),
        )
        job = captured
      }
    } finally {
      ex.tap = undefined
      ex.followed = undefined
      if (flight !== undefined) this.#vectors.land(flightKey!, flight, job)
    }
    if (!relay && !ex.clientGone) this.#answerAssembled(ex, plan, keys, found, capture, job)
    if (job !== undefined) this.#ctx.writer.queue(plan.layer, job)
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
        this.#ctx.send(ex, capture.status, capture.contentType || JSON_TYPE, body, 'miss')
      } else {
        const message = ex.error ?? 'the instance answered with an unreadable embedding response'
        this.#ctx.send(ex, 502, JSON_TYPE, errorBody(message, ex.route.dialect, 502), 'miss')
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
    this.#ctx.send(ex, 200, JSON_TYPE, Buffer.concat(parts), status)
  }
}

function vectorOf(entry: CacheEntry | undefined): StoredVector | undefined {
  if (entry === undefined) return undefined
  if (entry.view instanceof StoredVector) return entry.view
  const vector = StoredVector.decode(entry.value)
  entry.view = vector
  return vector
}
