/**
 * How corral writes an answer of its own (an error, its own routes, a cache replay, a merged
 * view): one `writeHead` and one `end`, so headers and body leave together, with the body's
 * length. Errors keep Ollama's `{"error": "..."}` shape, or OpenAI's `{"error": {"message",
 * "type"}}` on `/v1` routes, so clients parse them. Answers relayed from an instance are not
 * written here: they stream through proxy/upstream-attempt.ts.
 */
import { STATUS_CODES, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http'
import { answerThenLinger } from '../limits/lingering-close.js'

export const JSON_TYPE = 'application/json; charset=utf-8'
/** Without the charset: what the probes and the metrics listener have always answered with. */
export const PLAIN_JSON_TYPE = 'application/json'
export const NDJSON_TYPE = 'application/x-ndjson'
export const SSE_TYPE = 'text/event-stream'

/** Whose error shape an answer uses. */
export type Dialect = 'ollama' | 'openai'

const NEWLINE = 0x0a

/** The dialect of a request path or target: OpenAI's under `/v1/`, Ollama's elsewhere. */
export function dialectOf(target: string): Dialect {
  return target.startsWith('/v1/') ? 'openai' : 'ollama'
}

/** Serialises an error message in a dialect. */
export function errorBody(message: string, dialect: Dialect, status: number): string {
  if (dialect === 'openai') {
    const type = status === 404 ? 'not_found_error' : status < 500 ? 'invalid_request_error' : 'api_error'
    return JSON.stringify({ error: { message, type, param: null, code: null } })
  }
  return JSON.stringify({ error: message })
}

/** The message of an error answer: Ollama's `{"error"}`, OpenAI's `{"error": {"message"}}`, or the text (gin's 404/405). */
export function errorMessageOf(status: number, text: string): string {
  try {
    const value = JSON.parse(text) as unknown
    if (value !== null && typeof value === 'object') {
      const error = (value as Record<string, unknown>).error
      if (typeof error === 'string') return error
      if (error !== null && typeof error === 'object') {
        const message = (error as Record<string, unknown>).message
        if (typeof message === 'string') return message
      }
    }
  } catch {
    // not JSON: the text itself
  }
  const trimmed = text.trim()
  return trimmed !== '' ? trimmed : `${status} ${(STATUS_CODES[status] ?? 'error').toLowerCase()}`
}

/**
 * The end of a streamed answer that broke after it started: Ollama's error line for NDJSON, an
 * OpenAI error event for SSE, on a line of its own (`lastByte`: the last byte already sent).
 */
export function brokenStreamTail(format: 'ndjson' | 'sse', message: string, lastByte: number | undefined): string {
  if (format === 'sse') return `${lastByte === NEWLINE ? '' : '\n\n'}data: ${errorBody(message, 'openai', 502)}\n\n`
  return `${lastByte === NEWLINE ? '' : '\n'}${errorBody(message, 'ollama', 502)}\n`
}

/** How a whole answer is sent. */
export interface ReplyOptions {
  /** Headers only, no body (a HEAD request). */
  readonly head?: boolean
  /**
   * The request whose body was not read to its end: the answer goes out, then its body is
   * drained (bounded) and the connection closes, so a client still sending reads the answer
   * instead of a reset (see limits/lingering-close.ts).
   */
  readonly linger?: IncomingMessage
  /** Close the connection after this answer. */
  readonly close?: boolean
}

/**
 * Sends a whole answer. `headers` is the caller's own object (it gains `content-length`); a
 * `content-type` in it is kept as given.
 */
export function reply(res: ServerResponse, status: number, headers: OutgoingHttpHeaders, body: string | Buffer, options?: ReplyOptions): void {
  headers['content-length'] = typeof body === 'string' ? Buffer.byteLength(body) : body.length
  const payload = options?.head === true ? undefined : body
  if (options?.linger !== undefined) return answerThenLinger(options.linger, res, status, headers, payload)
  if (options?.close === true) headers.connection = 'close'
  res.writeHead(status, headers)
  res.end(payload)
}

/** Sends `value` as a JSON answer (`application/json; charset=utf-8` unless `headers` say otherwise). */
export function replyJson(res: ServerResponse, status: number, value: unknown, headers: OutgoingHttpHeaders = {}, options?: ReplyOptions): void {
  headers['content-type'] ??= JSON_TYPE
  reply(res, status, headers, JSON.stringify(value), options)
}

/** Sends an error answer in `dialect` (`application/json; charset=utf-8` unless `headers` say otherwise). */
export function replyError(
  res: ServerResponse,
  status: number,
  message: string,
  dialect: Dialect,
  headers: OutgoingHttpHeaders = {},
  options?: ReplyOptions,
): void {
  headers['content-type'] ??= JSON_TYPE
  reply(res, status, headers, errorBody(message, dialect, status), options)
}
