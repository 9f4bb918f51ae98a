/**
 * Header rewriting in both directions. Hop-by-hop headers (RFC 9110 section 7.6.1) describe one
 * connection and are never forwarded: the fixed list below plus every header the `Connection`
 * header names.
 */
import { randomBytes } from 'node:crypto'
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http'

const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
])

/** Headers corral sets itself on the way to an instance (undici sets host and content-length). */
const REPLACED_UPSTREAM: ReadonlySet<string> = new Set([
  'host',
  'content-length',
  'expect',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-request-id',
])

/** What a client could claim about where a request came from; passed on only from a trusted proxy. */
const CLAIMS_ORIGIN: ReadonlySet<string> = new Set(['forwarded', 'x-real-ip'])

function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined
  let tokens: Set<string> | undefined
  for (const part of (Array.isArray(value) ? value.join(',') : value).split(',')) {
    const token = part.trim().toLowerCase()
    if (token !== '' && token !== 'close' && token !== 'keep-alive') (tokens ??= new Set()).add(token)
  }
  return tokens
}

export interface ForwardInfo {
  requestId: string
  /** The peer's address (the socket's), as corral sees it. */
  clientAddress: string | undefined
  /**
   * The peer is a trusted proxy (`server.trust_proxy`): its X-Forwarded-* are kept and the
   * peer appended. Otherwise they are replaced by what corral sees, as nginx does without
   * `real_ip` and Envoy with `xff_num_trusted_hops: 0`.
   */
  trustedPeer: boolean
  /** Keep the client's content-length: the body is streamed through as it is. */
  streamedBody: boolean
}

/**
 * The headers to send to an instance for a client's request, as the flat `[name, value, ...]`
 * list undici takes without building another object.
 */
export function upstreamRequestHeaders(headers: IncomingHttpHeaders, info: ForwardInfo): string[] {
  const named = connectionTokens(headers.connection)
  const trusted = info.trustedPeer
  const out: string[] = []
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || HOP_BY_HOP.has(name) || named?.has(name)) continue
    if (REPLACED_UPSTREAM.has(name) && !(name === 'content-length' && info.streamedBody)) continue
    if (!trusted && CLAIMS_ORIGIN.has(name)) continue
    if (typeof value === 'string') out.push(name, value)
    else for (const v of value) out.push(name, v)
  }
  const client = info.clientAddress ?? 'unknown'
  const prior = trusted ? joined(headers['x-forwarded-for']) : undefined
  out.push('x-forwarded-for', prior ? `${prior}, ${client}` : client)
  out.push('x-forwarded-proto', (trusted ? joined(headers['x-forwarded-proto']) : undefined) ?? 'http')
  const host = (trusted ? joined(headers['x-forwarded-host']) : undefined) ?? headers.host
  if (host !== undefined) out.push('x-forwarded-host', host)
  out.push('x-request-id', info.requestId)
  return out
}

/** A header's value as one string (Node keeps some repeated headers as arrays); undefined when empty. */
function joined(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value.join(', ') : value
  return text === undefined || text.trim() === '' ? undefined : text
}

/** The headers to send to the client for an instance's response. */
export function clientResponseHeaders(
  headers: Record<string, string | string[] | undefined>,
  requestId: string,
): OutgoingHttpHeaders {
  const named = connectionTokens(headers.connection)
  const out: OutgoingHttpHeaders = {}
  for (const name in headers) {
    const value = headers[name]
    if (value === undefined || HOP_BY_HOP.has(name) || named?.has(name)) continue
    out[name] = value
  }
  out['x-request-id'] = requestId
  return out
}

const REQUEST_ID_RE = /^[A-Za-z0-9._:@/+=-]{1,128}$/

/** Random per process, so ids stay unique across restarts and replicas; a counter after it. */
const ID_PREFIX = randomBytes(6).toString('hex')
let idCounter = 0

/** A new request id, e.g. `3f9a1c02b7e4-1k2`: cheaper than a UUID per request, unique all the same. */
export function newRequestId(): string {
  return `${ID_PREFIX}-${(++idCounter).toString(36)}`
}

/** The client's `X-Request-Id` when it is sane, else undefined (one is generated). */
export function acceptedRequestId(value: string | string[] | undefined): string | undefined {
  return typeof value === 'string' && REQUEST_ID_RE.test(value) ? value : undefined
}
