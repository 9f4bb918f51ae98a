/**
 * One request/response pair of the fake while its handler runs, and the ways to answer it as
 * Ollama's gin server does: whole bodies, NDJSON/SSE streams whose headers go out with the first
 * chunk, Ollama- or OpenAI-shaped errors, and the scripted faults that cut an answer short.
 */
import { once } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import { setTimeout as delay } from 'node:timers/promises'
import type { RecordedRequest } from './fake-ollama-types.js'

export const JSON_TYPE = 'application/json; charset=utf-8'
export const TEXT_TYPE = 'text/plain; charset=utf-8'
export const NDJSON_TYPE = 'application/x-ndjson'
export const SSE_TYPE = 'text/event-stream'

/** Unwinds a handler once its exchange is over: the client left, or the fixture killed the socket. */
export class Gone extends Error {}

export interface ExchangeInit {
  req: IncomingMessage
  res: ServerResponse
  pathname: string
  record: RecordedRequest
  signal: AbortSignal
  tokenDelayMs: number
  promptDelayMs: number
  embedDelayMs: number | undefined
  /** Share of `embedDelayMs` each input after the first costs. */
  embedFurtherInputShare: number
  /** Keep whole answers in `record.answer` (off in benchmarks: no copy of a multi-part answer). */
  keepAnswer: boolean
  /** Sockets the fake destroys on purpose, so that their close is not counted as the client leaving. */
  killed: WeakSet<Socket>
}

export class FakeExchange {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly pathname: string
  readonly record: RecordedRequest
  /** Aborted when the response closes for any reason; every wait in a handler listens to it. */
  readonly signal: AbortSignal
  readonly startedNs = process.hrtime.bigint()
  /** When the request got its slot: Ollama's load_duration includes the queue wait. */
  slotNs = 0n
  /** The `:param` of a parameterised route (blob digest, model id). */
  param = ''
  tokenDelayMs: number
  /** Time in the slot before the first token (prompt evaluation). */
  readonly promptDelayMs: number
  /** Cost of one embedding input; undefined: one token's time per request, whatever its size. */
  readonly embedDelayMs: number | undefined
  /** Share of `embedDelayMs` each input after the first costs (1: every input costs the same). */
  readonly embedFurtherInputShare: number
  /** Set by the die-after-chunks behaviour. */
  dieAfterChunks: number | undefined
  /** Set by the error-after-chunks behaviour. */
  errorAfterChunks: { chunks: number; error: string } | undefined
  chunksSent = 0
  /** Set by the fail-progress behaviour. */
  failProgress: { lines: number; error: string } | undefined
  readonly #killed: WeakSet<Socket>
  readonly #keepAnswer: boolean

  constructor(init: ExchangeInit) {
    this.req = init.req
    this.res = init.res
    this.pathname = init.pathname
    this.record = init.record
    this.signal = init.signal
    this.tokenDelayMs = init.tokenDelayMs
    this.promptDelayMs = init.promptDelayMs
    this.embedDelayMs = init.embedDelayMs
    this.embedFurtherInputShare = init.embedFurtherInputShare
    this.#killed = init.killed
    this.#keepAnswer = init.keepAnswer
  }

  /** A whole answer; given as parts, they are written as they are (no joined copy unless recorded). */
  send(status: number, type: string | undefined, body: Buffer | readonly Buffer[]): void {
    if (this.signal.aborted) return
    const parts: readonly Buffer[] = Buffer.isBuffer(body) ? [body] : body
    const length = parts.reduce((n, p) => n + p.length, 0)
    if (this.#keepAnswer || this.dieAfterChunks !== undefined) this.record.answer = parts.length === 1 ? parts[0] : Buffer.concat(parts)
    this.res.writeHead(status, type === undefined ? { 'Content-Length': length } : { 'Content-Type': type, 'Content-Length': length })
    const whole = this.record.answer
    if (this.dieAfterChunks !== undefined && whole !== undefined && length > 0 && this.req.method !== 'HEAD') {
      this.res.write(whole.subarray(0, length >> 1))
      this.kill('close')
      return
    }
    this.res.cork()
    for (const part of parts) this.res.write(part)
    this.res.end()
    this.res.uncork()
  }

  sendJSON(status: number, value: unknown): void {
    this.send(status, JSON_TYPE, Buffer.from(JSON.stringify(value)))
  }

  /** Ollama's `{"error": "..."}`, or OpenAI's error object on /v1 (openai.NewError). */
  sendError(status: number, message: string): void {
    if (!this.pathname.startsWith('/v1/')) return this.sendJSON(status, { error: message })
    const type = status === 400 ? 'invalid_request_error' : status === 404 ? 'not_found_error' : 'api_error'
    this.sendJSON(status, { error: { message, type, param: null, code: null } })
  }

  /** Headers of a stream go out with its first chunk, as with gin (so TTFB is the first token). */
  beginStream(type: string): void {
    if (this.signal.aborted) throw new Gone()
    this.res.writeHead(200, { 'Content-Type': type })
    if (this.dieAfterChunks === 0) {
      this.res.flushHeaders()
      this.kill('close')
      throw new Gone()
    }
  }

  /** Writes one chunk, honouring backpressure, die-after-chunks and error-after-chunks. */
  async write(text: string): Promise<void> {
    if (this.signal.aborted) throw new Gone()
    if (this.errorAfterChunks !== undefined && this.chunksSent >= this.errorAfterChunks.chunks) {
      this.res.end(`${JSON.stringify({ error: this.errorAfterChunks.error })}\n`)
      throw new Gone()
    }
    this.chunksSent++
    if (this.dieAfterChunks !== undefined && this.chunksSent >= this.dieAfterChunks) {
      this.res.write(text)
      this.kill('close')
      throw new Gone()
    }
    if (!this.res.write(text)) await once(this.res, 'drain', { signal: this.signal })
  }

  /** The time `n` tokens take; rejects as soon as the client leaves. */
  pace(n = 1): Promise<void> {
    // No timer at zero cost: a timer is at least 1 ms, which a benchmark's stand-in cannot afford.
    if (this.tokenDelayMs <= 0) return this.signal.aborted ? Promise.reject(new Gone()) : Promise.resolve()
    return delay(this.tokenDelayMs * n, undefined, { signal: this.signal })
  }

  /** Prompt evaluation before the first token; rejects as soon as the client leaves. */
  async evalPrompt(): Promise<void> {
    if (this.promptDelayMs > 0) await delay(this.promptDelayMs, undefined, { signal: this.signal })
  }

  /** The time embedding `inputs` texts takes; rejects as soon as the client leaves. */
  embedCost(inputs: number): Promise<void> {
    if (this.embedDelayMs === undefined) return this.pace()
    if (this.embedDelayMs <= 0) return this.signal.aborted ? Promise.reject(new Gone()) : Promise.resolve()
    return delay(this.#embedMs(this.embedDelayMs, inputs), undefined, { signal: this.signal })
  }

  /** `perInput` for the first input plus its share for each further one. */
  #embedMs(perInput: number, inputs: number): number {
    return perInput * (1 + this.embedFurtherInputShare * Math.max(0, inputs - 1))
  }

  /** What embedding `inputs` texts takes by the time model, in ns (for frozen timings). */
  embedNominalNs(inputs: number): number {
    return Math.round((this.embedDelayMs === undefined ? this.tokenDelayMs : this.#embedMs(this.embedDelayMs, inputs)) * 1e6)
  }

  /** Destroy the connection on purpose: 'reset' sends a TCP RST, 'close' a FIN after pending writes. */
  kill(how: 'reset' | 'close'): void {
    const socket = this.req.socket
    this.#killed.add(socket)
    if (how === 'reset') socket.resetAndDestroy()
    else socket.end(() => socket.destroy())
  }
}
