/**
 * One target's HTTP client: an undici Pool sized to the run's concurrency (requests beyond it
 * wait in the pool's queue, and that wait counts in their latency, as a user's would), one POST
 * per call, timed with performance.now(). Answers are read whole and checked, so a request only
 * counts as a success when the client got everything a real client would use; streams are read
 * line by line for the time to the first token.
 */
import { performance } from 'node:perf_hooks'
import { Pool } from 'undici'
import { httpErrorKind, transportErrorKind } from './error-kind.js'

export type CallPath = '/api/embed' | '/api/generate' | '/api/chat'

export type CallOutcome =
  | { ok: true; ms: number; ttftMs: number | undefined; value: Record<string, unknown> }
  | { ok: false; kind: string }
  | { ok: false; kind: 'cancelled' }

const USER_AGENT = 'corral-bench'

export class TargetClient {
  readonly url: string
  readonly #pool: Pool
  readonly #timeoutMs: number

  constructor(url: string, connections: number, timeoutMs: number) {
    this.url = url
    this.#timeoutMs = timeoutMs
    // Timeouts are ours (a deadline on the whole call), not undici's idle timers.
    this.#pool = new Pool(url, { connections, pipelining: 1, headersTimeout: 0, bodyTimeout: 0 })
  }

  /**
   * Sends one call. `startedAt` (performance.now()) is when the user turn began, so that the time
   * to first token of a RAG turn includes its embedding; `ms` is this call's own time.
   */
  async call(path: CallPath, body: object, stream: boolean, cancel: AbortSignal, startedAt: number): Promise<CallOutcome> {
    const callStart = performance.now()
    const deadline = AbortSignal.timeout(this.#timeoutMs)
    const signal = AbortSignal.any([cancel, deadline])
    let headersIn = false
    try {
      const res = await this.#pool.request({
        path,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': USER_AGENT },
        body: JSON.stringify(body),
        signal,
      })
      if (res.statusCode < 200 || res.statusCode > 299) {
        await res.body.dump()
        return { ok: false, kind: httpErrorKind(res.statusCode) }
      }
      headersIn = true
      if (stream) return await readStream(res.body, path, callStart, startedAt)
      const value = parseObject(await res.body.text())
      if (value === undefined || 'error' in value || !hasContent(path, value, false)) return { ok: false, kind: 'bad_body' }
      return { ok: true, ms: performance.now() - callStart, ttftMs: undefined, value }
    } catch (err) {
      if (cancel.aborted) return { ok: false, kind: 'cancelled' }
      if (deadline.aborted) return { ok: false, kind: 'timeout' }
      // The connection failed after a 2xx status line: the answer was cut.
      if (headersIn) return { ok: false, kind: stream ? 'stream_cut' : 'body_cut' }
      return { ok: false, kind: transportErrorKind(err) }
    }
  }

  /** GET a JSON document; undefined on any failure or non-200. */
  async getJson(path: string, timeoutMs: number): Promise<unknown> {
    try {
      const res = await this.#pool.request({ path, method: 'GET', headers: { 'user-agent': USER_AGENT }, signal: AbortSignal.timeout(timeoutMs) })
      const text = await res.body.text()
      return res.statusCode === 200 ? (JSON.parse(text) as unknown) : undefined
    } catch {
      return undefined
    }
  }

  /** Closes idle connections; aborts what is still in flight. Idempotent. */
  async close(): Promise<void> {
    if (this.#pool.destroyed) return
    await this.#pool.destroy()
  }
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(text) as unknown
    return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/** Whether an answer (or one stream chunk, when `chunk`) carries what the route promises. */
function hasContent(path: CallPath, value: Record<string, unknown>, chunk: boolean): boolean {
  if (path === '/api/embed') return Array.isArray(value.embeddings) && value.embeddings.length > 0
  if (path === '/api/generate') return chunk ? typeof value.response === 'string' && value.response !== '' : typeof value.response === 'string'
  const message = value.message as { content?: unknown; thinking?: unknown } | undefined
  if (message === undefined || message === null || typeof message !== 'object') return false
  if (!chunk) return typeof message.content === 'string'
  return (typeof message.content === 'string' && message.content !== '') || (typeof message.thinking === 'string' && message.thinking !== '')
}

/** Reads an NDJSON answer to its `done: true` line; the first line with text is the first token. */
async function readStream(body: NodeJS.ReadableStream, path: CallPath, callStart: number, startedAt: number): Promise<CallOutcome> {
  let pending = ''
  let ttftMs: number | undefined
  let last: Record<string, unknown> | undefined
  const take = (line: string): string | undefined => {
    if (line.trim() === '') return undefined
    const value = parseObject(line)
    if (value === undefined) return 'bad_body'
    if ('error' in value) return 'stream_error'
    if (ttftMs === undefined && hasContent(path, value, true)) ttftMs = performance.now() - startedAt
    last = value
    return undefined
  }
  // Decoded as a stream, so a character split between two chunks is not mangled.
  body.setEncoding('utf8')
  for await (const chunk of body as AsyncIterable<string>) {
    pending += chunk
    let nl: number
    while ((nl = pending.indexOf('\n')) !== -1) {
      const kind = take(pending.slice(0, nl))
      pending = pending.slice(nl + 1)
      if (kind !== undefined) return { ok: false, kind }
    }
  }
  const kind = take(pending)
  if (kind !== undefined) return { ok: false, kind }
  if (last === undefined || last.done !== true) return { ok: false, kind: 'stream_cut' }
  return { ok: true, ms: performance.now() - callStart, ttftMs, value: last }
}
