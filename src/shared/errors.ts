/**
 * Every error corral produces itself, and every transport error from an instance, mapped in one
 * place to a stable code, an HTTP status and a message. http/reply.ts writes them in Ollama's
 * `{"error": "..."}` shape (OpenAI's `{"error": {"message", "type"}}` on `/v1` routes).
 */

export type ErrorCode =
  | 'CORRAL_BAD_REQUEST'
  | 'CORRAL_BODY_TOO_LARGE'
  | 'CORRAL_NO_INSTANCE'
  | 'CORRAL_UPSTREAM_FAILED'
  | 'CORRAL_UPSTREAM_TIMEOUT'
  | 'CORRAL_UPSTREAM_BUSY'
  | 'CORRAL_QUEUE_FULL'
  | 'CORRAL_QUEUE_TIMEOUT'
  | 'CORRAL_INTERNAL'

/** An error corral answers with. */
export class CorralError extends Error {
  readonly code: ErrorCode
  readonly status: number
  /** Seconds for a `Retry-After` header, when waiting could help. */
  readonly retryAfterSeconds: number | undefined
  constructor(code: ErrorCode, status: number, message: string, retryAfterSeconds?: number) {
    super(message)
    this.code = code
    this.status = status
    this.retryAfterSeconds = retryAfterSeconds
  }
}

export const badRequest = (message: string): CorralError => new CorralError('CORRAL_BAD_REQUEST', 400, message)

export const bodyTooLarge = (limitBytes: number): CorralError =>
  new CorralError('CORRAL_BODY_TOO_LARGE', 413, `request body is larger than the limit of ${limitBytes} bytes`)

/** How an attempt at one instance failed before any response byte reached the client. */
export type FailureKind =
  | 'refused'
  | 'reset'
  | 'connect_timeout'
  | 'first_byte_timeout'
  | 'idle_timeout'
  | 'dns'
  | 'tls'
  | 'busy'
  | 'status_5xx'
  | 'status_429'
  | 'closed'
  | 'other'

/**
 * Why an attempt counted as a failure against its instance: a failure before any byte, a 5xx or
 * 429 answer, or an answer cut mid-body. A bounded set (it is a metric label).
 */
export type InstanceErrorKind = FailureKind | 'cut'

export interface UpstreamFailure {
  readonly kind: FailureKind
  readonly message: string
  /** True when another instance may be tried: nothing reached the client yet. */
  readonly retryable: boolean
  /** The instance's HTTP status, when it answered one (busy and status failures). */
  readonly status?: number
  /** The instance's own error message (its `{"error"}`), when it answered one. */
  readonly detail?: string
}

interface Mapping {
  kind: FailureKind
  message: string
  retryable: boolean
}

/** Transport error codes (Node's and undici's) -> what they mean for a proxy. One line each. */
const TRANSPORT_ERRORS: Readonly<Record<string, Mapping>> = {
  ECONNREFUSED: { kind: 'refused', message: 'connection refused', retryable: true },
  ECONNRESET: { kind: 'reset', message: 'connection reset', retryable: true },
  EPIPE: { kind: 'reset', message: 'connection reset (broken pipe)', retryable: true },
  UND_ERR_SOCKET: { kind: 'reset', message: 'connection closed by the instance', retryable: true },
  UND_ERR_CONNECT_TIMEOUT: { kind: 'connect_timeout', message: 'connect timeout', retryable: true },
  ETIMEDOUT: { kind: 'connect_timeout', message: 'connect timeout', retryable: true },
  EHOSTUNREACH: { kind: 'refused', message: 'host unreachable', retryable: true },
  ENETUNREACH: { kind: 'refused', message: 'network unreachable', retryable: true },
  EADDRNOTAVAIL: { kind: 'refused', message: 'address not available', retryable: true },
  UND_ERR_HEADERS_TIMEOUT: { kind: 'first_byte_timeout', message: 'no response before the first-byte timeout', retryable: true },
  UND_ERR_BODY_TIMEOUT: { kind: 'idle_timeout', message: 'response stalled past the idle timeout', retryable: false },
  ENOTFOUND: { kind: 'dns', message: 'host name not found', retryable: true },
  EAI_AGAIN: { kind: 'dns', message: 'host name lookup failed', retryable: true },
  UND_ERR_CLOSED: { kind: 'closed', message: 'connection pool closed', retryable: true },
  UND_ERR_DESTROYED: { kind: 'closed', message: 'connection pool closed', retryable: true },
  UND_ERR_RESPONSE_EXCEEDED_MAX_SIZE: { kind: 'other', message: 'response too large', retryable: false },
}

/** Maps any error thrown by an upstream request (or its body stream) to an `UpstreamFailure`. */
export function upstreamFailure(err: unknown): UpstreamFailure {
  const code = errorCode(err)
  const known = code === undefined ? undefined : TRANSPORT_ERRORS[code]
  if (known) return known
  if (code?.startsWith('ERR_TLS') || code?.includes('CERT')) {
    return { kind: 'tls', message: `TLS error (${code})`, retryable: true }
  }
  const message = err instanceof Error ? err.message : String(err)
  return { kind: 'other', message: code ? `${message} (${code})` : message, retryable: false }
}

function errorCode(err: unknown): string | undefined {
  let e: unknown = err
  // undici wraps some socket errors; the first code found on the cause chain is the telling one.
  for (let depth = 0; depth < 4 && e && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') return code
    e = (e as { cause?: unknown }).cause
  }
  return undefined
}

/** A 503 "server busy" answered by an instance: retried elsewhere, and the signal of an overload. */
export function busyFailure(detail: string): UpstreamFailure {
  return { kind: 'busy', message: `503 ${detail}`, retryable: true, status: 503, detail }
}

/**
 * An error status listed in `proxy.retry_on` (a 500 "llama runner process has terminated", a
 * 502 or 504 from a proxy in front of Ollama) answered before any byte reached the client:
 * another instance is tried. 503 is {@link busyFailure}.
 */
export function statusFailure(status: number, detail: string): UpstreamFailure {
  if (status === 503) return busyFailure(detail)
  return { kind: status === 429 ? 'status_429' : 'status_5xx', message: `${status} ${detail}`, retryable: true, status, detail }
}

/** The answer when every attempt failed: what happened at each instance, in order. */
export function attemptsFailed(failures: readonly { instance: string; failure: UpstreamFailure }[]): CorralError {
  const detail = failures.map((f) => `${f.instance}: ${f.failure.message}`).join('; ')
  const n = failures.length
  const what = `${n === 1 ? 'the only attempt' : `all ${n} attempts`} failed (${detail})`
  // Every instance answered the same error status: the client gets that status and the
  // instance's own message, as a single Ollama would have answered.
  const first = failures[0]?.failure
  if (first?.status !== undefined && first.status !== 503 && failures.every((f) => f.failure.status === first.status)) {
    const detail = first.detail ?? `status ${first.status}`
    // The same message everywhere too: exactly what one Ollama would have answered.
    const same = failures.every((f) => f.failure.detail === first.detail)
    return new CorralError('CORRAL_UPSTREAM_FAILED', first.status, same ? detail : `${detail}: ${what}`)
  }
  if (failures.some((f) => f.failure.kind === 'busy')) {
    return new CorralError('CORRAL_UPSTREAM_BUSY', 503, `server busy, please try again: ${what}`, 1)
  }
  if (failures.every((f) => f.failure.kind === 'first_byte_timeout' || f.failure.kind === 'connect_timeout')) {
    return new CorralError('CORRAL_UPSTREAM_TIMEOUT', 504, `upstream timeout: ${what}`)
  }
  return new CorralError('CORRAL_UPSTREAM_FAILED', 502, `no instance could answer: ${what}`)
}

/** The answer when a part of a batch sent in parts came back cut or unreadable: no answer can be joined. */
export function brokenPart(detail: string): CorralError {
  return new CorralError('CORRAL_UPSTREAM_FAILED', 502, `the batch was sent in parts and one part's answer is unusable: ${detail}`)
}

/** The answer when every instance is at its concurrency limit. */
export function noInstance(count: number): CorralError {
  return new CorralError(
    'CORRAL_NO_INSTANCE',
    503,
    `server busy, please try again: all ${count} instance${count === 1 ? ' is' : 's are'} at their concurrency limit`,
    1,
  )
}

/** The answer when the queue for a free instance slot is full. */
export function queueFull(limit: number): CorralError {
  return new CorralError(
    'CORRAL_QUEUE_FULL',
    503,
    `server busy, please try again: every instance is at its concurrency limit and the queue is full (${limit} waiting)`,
    1,
  )
}

/** The answer when a request waited for a free instance slot longer than the queue timeout. */
export function queueTimeout(waitedMs: number): CorralError {
  return new CorralError(
    'CORRAL_QUEUE_TIMEOUT',
    503,
    `server busy, please try again: no instance slot became free within ${Math.round(waitedMs / 1000)}s`,
    5,
  )
}
