/**
 * What counts as a failed request, and its kind, in one place:
 *
 * - `http_<status>`: any answer that is not 2xx (`http_503`, `http_404`, ...);
 * - `timeout`: no complete answer within `--timeout`;
 * - `stream_error`: a 200 stream with an `{"error": ...}` line (how Ollama reports a failure mid-stream);
 * - `stream_cut`: a stream that ended, or whose connection failed, before its `done: true` line;
 * - `body_cut`: a 2xx answer (not streamed) whose connection failed before the body's end;
 * - `bad_body`: a 2xx answer that is not the JSON the route promises (or carries `error`);
 * - transport errors before any answer, by their system code (`ECONNREFUSED`, `ECONNRESET`, ...);
 *   `socket_closed` when the server closed the connection before answering; `network_error` for
 *   anything else.
 *
 * Requests cut short by Ctrl-C are neither successes nor errors: they are counted as cancelled.
 */

const TIMEOUT_CODES: ReadonlySet<string> = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT'])

export const httpErrorKind = (status: number): string => `http_${status}`

/** The kind of a transport error thrown by undici or the socket. */
export function transportErrorKind(err: unknown): string {
  let e = err as { code?: unknown; cause?: unknown; name?: unknown } | undefined
  for (let depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    if (e.name === 'TimeoutError') return 'timeout'
    const code = typeof e.code === 'string' ? e.code : undefined
    if (code !== undefined) {
      if (TIMEOUT_CODES.has(code)) return 'timeout'
      if (code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED') {
        // undici keeps the system error (ECONNRESET) as the cause when there is one.
        const inner = (e.cause as { code?: unknown } | undefined)?.code
        return typeof inner === 'string' && /^E[A-Z]+$/.test(inner) ? inner : 'socket_closed'
      }
      if (/^E[A-Z]+$/.test(code)) return code
    }
    e = e.cause as typeof e
  }
  return 'network_error'
}
