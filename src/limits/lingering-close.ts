/**
 * A lingering close, as nginx's `lingering_close`: an answer given before the request body was
 * read (413, 401, 429 on an upload) is sent whole, then the rest of the body is read and
 * discarded for a bounded time and size before the connection closes. Closing at once would
 * leave unread bytes in the socket: the kernel then resets the connection, the client still
 * uploading gets EPIPE or ECONNRESET and may never read the answer.
 *
 * The answer carries `Connection: close` and a Content-Length, so the client has all of it as
 * soon as it is written; `res.end()` (after which node closes the socket) waits for the body's
 * end, `LINGER_MAX_BYTES` discarded, `LINGER_MS`, or the client closing, whichever comes first.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http'

/** Longest time an unread body is read and discarded after the answer (nginx: lingering_time 30 s). */
export const LINGER_MS = 5000
/** Most bytes of an unread body read and discarded after the answer. */
export const LINGER_MAX_BYTES = 256 * 1024 * 1024

/** Answers `status` with `body`, then closes the connection once the unread request body is drained (bounded). */
export function answerThenLinger(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  headers: OutgoingHttpHeaders,
  body: string | Buffer | undefined,
): void {
  res.writeHead(status, { ...headers, connection: 'close' })
  if (req.complete || req.destroyed) {
    res.end(body)
    return
  }
  if (body !== undefined) res.write(body)
  let discarded = 0
  const timer = setTimeout(() => done(), LINGER_MS)
  const onData = (chunk: Buffer): void => {
    discarded += chunk.length
    if (discarded > LINGER_MAX_BYTES) done()
  }
  const done = (): void => {
    clearTimeout(timer)
    req.off('data', onData)
    req.off('end', done)
    req.off('close', done)
    res.end()
  }
  req.on('data', onData)
  req.once('end', done)
  req.once('close', done)
  req.resume()
}
