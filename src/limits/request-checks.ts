/**
 * Checks on a request's framing and method, made before anything else looks at it. Node's parser
 * (llhttp, strict mode) already refuses Content-Length with Transfer-Encoding, duplicate or
 * malformed Content-Length, a Transfer-Encoding whose last coding is not chunked, obs-fold and
 * bare LF/CR line ends; what it lets through and corral refuses is here.
 */
import type { IncomingMessage } from 'node:http'

export interface Refusal {
  readonly status: number
  readonly message: string
  /** Extra response headers (Allow on a 405). */
  readonly headers?: Readonly<Record<string, string>>
  /** The connection is closed after the answer: its framing cannot be trusted for a next request. */
  readonly close?: boolean
}

/** The methods of the Ollama API and its CORS preflight; PUT and PATCH pass for unknown paths. */
export const ALLOWED_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])
const ALLOW = [...ALLOWED_METHODS].join(', ')

const methodNotAllowed = (method: string): Refusal => ({
  status: 405,
  message: `method ${method} is not allowed`,
  headers: { allow: ALLOW },
})

/** The 405 for a CONNECT request (node hands those to the server's `connect` event). */
export const CONNECT_REFUSAL = methodNotAllowed('CONNECT')

/** Why `req` must be refused, or undefined when it may go on. */
export function refusalOf(req: IncomingMessage): Refusal | undefined {
  const method = req.method ?? ''
  if (!ALLOWED_METHODS.has(method)) return methodNotAllowed(method)
  // RFC 9112 section 3.2: exactly one Host in HTTP/1.1 (node keeps only the first of several).
  const hosts = countHeader(req.rawHeaders, 'host')
  if (hosts > 1) return { status: 400, message: 'more than one Host header', close: true }
  if (hosts === 0 && req.httpVersionMinor >= 1 && req.httpVersionMajor === 1) return { status: 400, message: 'missing Host header', close: true }
  // `identity, chunked` and friends: one coding only, so no two parsers can disagree on the body.
  const te = req.headers['transfer-encoding']
  if (te !== undefined && te.trim().toLowerCase() !== 'chunked') {
    return { status: 400, message: `unsupported Transfer-Encoding ${JSON.stringify(te)}: only chunked is accepted`, close: true }
  }
  return undefined
}

function countHeader(raw: readonly string[], lowerName: string): number {
  let n = 0
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) n++
  }
  return n
}
