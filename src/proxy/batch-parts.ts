/**
 * Bulk embedding batches sent to the instances in parts. An instance runs a batch in one of its
 * slots from start to end; a query that arrives while every slot runs a 32-input batch waits for
 * the first of them to end. Cut into parts of at most `balancer.priority.bulk_part_size` inputs,
 * each part a request of its own that takes a slot through the balancer (as bulk), the batch
 * holds a slot for one part at a time, and a waiting interactive request gets the slot between
 * two parts. The client gets one answer, joined from the parts' answers (joined-embeddings.ts),
 * in the shape one instance would have given.
 *
 * Only when it helps: a bulk `/api/embed` or `/v1/embeddings` request with more text inputs than
 * the part size, while interactive requests came in the last 10 s (a fleet busy with bulk only
 * runs whole batches: every part costs the instance its per-request work again), for at most
 * two batches in flight of three (CUT_SHARE), and when the model's digest is known: every part
 * goes to an instance with that digest, the one the cache keys use.
 *
 * Below the cache: with the cache on, the parts carry the items the cache misses, and the cache
 * sees the joined answer as it would see one instance's (and keeps it only when it is whole and
 * 200). If a part fails (after its own retries), the other parts are cancelled and the client
 * gets one error: the instance's own error answer, or corral's. A client that leaves cancels the
 * parts not done (unless single-flight followers wait for the answer).
 */
import { performance } from 'node:perf_hooks'
import type { Balancer } from '../balancer/balancer.js'
import type { Instance } from '../balancer/instance.js'
import { ResponseCapture } from '../cache/response-capture.js'
import { Exchange } from '../http/exchange.js'
import { JSON_TYPE, reply } from '../http/reply.js'
import { brokenPart } from '../shared/errors.js'
import { joinEmbeddings, type PartAnswer } from './joined-embeddings.js'

/** A part's answer is read whole before it is joined; above this the batch fails. */
const MAX_PART_BYTES = 256 * 1024 * 1024

/**
 * At most this share of the batches corral has in flight (of those it may cut) go in parts; the
 * others go whole. Every cut costs the instance its per-request work once more (a 32-input batch
 * of the priority bench cut in two: 8 % more slot time), and batches of mixed lengths also keep
 * the slots from ending in lock step, so a query finds one freeing soon. A batch alone is cut.
 */
const CUT_SHARE = 2 / 3

/** How a batch is cut: its parts' inputs, in order, and the digest every part must be served with. */
interface BatchCut {
  readonly parts: readonly (readonly string[])[]
  readonly digest: string
}

export class BatchParts {
  readonly #balancer: Balancer
  /** Batches in flight that corral could cut: sent in parts, and sent whole (CUT_SHARE). */
  #cutInFlight = 0
  #wholeInFlight = 0
  readonly #wholeDone = (): void => void this.#wholeInFlight--

  constructor(balancer: Balancer) {
    this.#balancer = balancer
  }

  /**
   * Sends `ex` upstream through `send` (balancer, failover, relay): whole, or in parts when it is
   * a bulk batch worth cutting now. In parts, `ex` is answered with the joined answer, through
   * its tap (the cache) and to the client when it relays; rejects with a CorralError when a part
   * failed, and resolves without answering when the client left.
   */
  forward(ex: Exchange, send: (exchange: Exchange) => Promise<void>): Promise<void> {
    const cut = this.#cut(ex)
    if (cut === undefined) return send(ex)
    if (this.#cutInFlight >= CUT_SHARE * (this.#cutInFlight + this.#wholeInFlight + 1)) {
      this.#wholeInFlight++
      return send(ex).finally(this.#wholeDone)
    }
    this.#cutInFlight++
    return this.#forwardParts(ex, cut, send).finally(() => this.#cutInFlight--)
  }

  /** How `ex` would be sent in parts, or undefined when it goes whole. */
  #cut(ex: Exchange): BatchCut | undefined {
    if (ex.priority !== 'bulk' || (ex.route.name !== 'embed' && ex.route.name !== 'openai_embeddings')) return undefined
    const size = this.#balancer.priorityRules.bulkPartSize
    const input = ex.json?.input
    if (size === 0 || !Array.isArray(input) || input.length <= size || ex.modelKey === undefined) return undefined
    for (const item of input) if (typeof item !== 'string') return undefined
    if (!this.#balancer.interactiveRecently()) return undefined
    const digest = this.#balancer.digestOf(ex.modelKey)
    if (digest === undefined) return undefined
    // Equal parts: 17 inputs in parts of at most 16 go as 9 and 8, not 16 and 1.
    const count = Math.ceil(input.length / size)
    const parts: string[][] = []
    for (let p = 0, from = 0; p < count; p++) {
      const to = from + Math.ceil((input.length - from) / (count - p))
      parts.push((input as string[]).slice(from, to))
      from = to
    }
    return { parts, digest }
  }

  /** Sends the parts of `ex`, each through `send` into its capture, and answers `ex` with them joined. */
  async #forwardParts(ex: Exchange, cut: BatchCut, send: (part: Exchange) => Promise<void>): Promise<void> {
    if (ex.clientGone) return
    const parts = cut.parts.map((inputs) => partOf(ex, inputs, cut.digest))
    ex.parts = parts.length
    const cancel = (): void => {
      for (const part of parts) {
        if (part.clientGone) continue
        part.clientGone = true
        part.upstream?.cancel()
      }
    }
    // The client left: the parts stop, unless single-flight followers wait for the answer.
    ex.upstream = { cancel: () => ex.followed?.() !== true && cancel() }
    let failed: { index: number; error: Error | undefined } | undefined
    try {
      await Promise.all(
        parts.map(async (part, index) => {
          let error: Error | undefined
          try {
            await send(part)
          } catch (err) {
            error = err instanceof Error ? err : new Error('a part failed', { cause: err })
          }
          const capture = part.tap as ResponseCapture
          if (error === undefined && capture.status === 200 && capture.whole) return
          if (error === undefined && part.clientGone) return
          // The first part to fail decides the answer; the others are not needed any more.
          if (failed === undefined) {
            failed = { index, error }
            cancel()
          }
        }),
      )
    } finally {
      ex.upstream = undefined
      for (const part of parts) ex.attempts += part.attempts
      ex.instance = lastInstance(parts)
    }
    if (failed !== undefined) return this.#answerFailure(ex, parts, failed.index, failed.error)
    // Cancelled because the client left (and nobody follows): nothing to answer.
    if (parts.some((p) => !(p.tap as ResponseCapture).whole)) return
    const answers: PartAnswer[] = parts.map((p, i) => ({ body: (p.tap as ResponseCapture).body()!, inputs: cut.parts[i]!.length }))
    const joined = joinEmbeddings(ex.route.name === 'embed' ? 'embed' : 'openai', ex.model, answers, (performance.now() - ex.startedAt) * 1e6)
    if (!Buffer.isBuffer(joined)) {
      throw brokenPart(`part ${joined.unusable + 1} of ${parts.length} (${parts[joined.unusable]!.instance?.name ?? '?'}) is not one vector per input`)
    }
    deliver(ex, 200, JSON_TYPE, joined)
  }

  /**
   * A part failed: corral's own error is thrown (the proxy answers it); an instance's error
   * answer (a status not retried, e.g. 400 for an input too long) is the batch's answer, as the
   * instance would have given it for the whole batch; a cut answer is corral's 502.
   */
  #answerFailure(ex: Exchange, parts: readonly Exchange[], index: number, error: Error | undefined): void {
    if (error !== undefined) throw error
    const part = parts[index]!
    const capture = part.tap as ResponseCapture
    const body = capture.body()
    if (capture.status !== 200 && body !== undefined) return deliver(ex, capture.status, capture.contentType || JSON_TYPE, body)
    const why = part.error ?? (capture.overflow ? `larger than ${MAX_PART_BYTES} bytes` : 'the answer was cut')
    throw brokenPart(`part ${index + 1} of ${parts.length} (${part.instance?.name ?? '?'}): ${why}`)
  }
}

/** A part of `ex`: the same request with only `inputs`, bulk, captured (never relayed), pinned to `digest`. */
function partOf(ex: Exchange, inputs: readonly string[], digest: string): Exchange {
  const part = new Exchange(ex.req, ex.res, ex.id, ex.route, performance.now())
  part.json = { ...ex.json, input: inputs }
  part.body = Buffer.from(JSON.stringify(part.json))
  part.model = ex.model
  part.modelKey = ex.modelKey
  part.digest = digest
  part.priority = 'bulk'
  part.key = ex.key
  part.keyLabel = ex.keyLabel
  part.cachePartition = ex.cachePartition
  part.tenant = ex.tenant
  part.shareWeight = ex.shareWeight
  part.peer = ex.peer
  part.trustedPeer = ex.trustedPeer
  part.relay = false
  part.tap = new ResponseCapture(MAX_PART_BYTES, undefined, 'reference')
  return part
}

/** Answers `ex` as an instance would have: through its tap (the cache's capture), and to the client when it relays. */
function deliver(ex: Exchange, status: number, type: string, body: Buffer): void {
  const tap = ex.tap
  if (tap !== undefined) {
    tap.start(status, { 'content-type': type, 'content-length': String(body.length) })
    tap.data(body)
    tap.end()
  }
  if (!ex.relay || ex.clientGone) return
  ex.firstByteAt = performance.now()
  reply(ex.res, status, { 'content-type': type, 'x-request-id': ex.id }, body)
}

function lastInstance(parts: readonly Exchange[]): Instance | undefined {
  for (let i = parts.length - 1; i >= 0; i--) if (parts[i]!.instance !== undefined) return parts[i]!.instance
  return undefined
}
