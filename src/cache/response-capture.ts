import type { ResponseTap } from '../http/exchange.js'

/** Receives a captured answer's events as they happen (single-flight followers streaming along). */
export interface CaptureListener {
  start(): void
  data(chunk: Buffer): void
}

/**
 * A response tap that keeps the instance's answer, up to `maxBytes` (beyond that it is dropped
 * and the answer is not stored), and passes each chunk on to a listener. `copy` keeps copies of
 * the chunks; `reference` keeps the chunks themselves: each is a view on the socket read that
 * brought it, which nothing reuses, so keeping it costs no copy (but holds that read's buffer
 * until the capture is let go).
 */
export class ResponseCapture implements ResponseTap {
  status = 0
  contentType = ''
  /** The chunks so far (copies); emptied when the answer outgrew the cap. */
  chunks: Buffer[] = []
  bytes = 0
  /** The answer outgrew the cap: `chunks` is incomplete. */
  overflow = false
  /** The body arrived whole. */
  ended = false
  /** The answer failed or was cut. */
  aborted = false
  readonly #maxBytes: number
  readonly #listener: CaptureListener | undefined
  readonly #copy: boolean

  constructor(maxBytes: number, listener?: CaptureListener, keep: 'copy' | 'reference' = 'copy') {
    this.#maxBytes = maxBytes
    this.#listener = listener
    this.#copy = keep === 'copy'
  }

  start(statusCode: number, headers: Readonly<Record<string, string | string[] | undefined>>): void {
    this.status = statusCode
    const type = headers['content-type']
    this.contentType = typeof type === 'string' ? type : ''
    this.#listener?.start()
  }

  data(chunk: Buffer): void {
    const copy = this.#copy ? Buffer.from(chunk) : chunk
    if (!this.overflow) {
      if (this.bytes + copy.length > this.#maxBytes) {
        this.overflow = true
        this.chunks = []
      } else {
        this.chunks.push(copy)
      }
    }
    this.bytes += copy.length
    this.#listener?.data(copy)
  }

  end(): void {
    this.ended = true
  }

  abort(): void {
    this.aborted = true
  }

  /** Whether the whole body was captured (any status). */
  get whole(): boolean {
    return this.ended && !this.aborted && !this.overflow
  }

  /** The captured body, when whole. */
  body(): Buffer | undefined {
    return this.whole ? Buffer.concat(this.chunks, this.bytes) : undefined
  }
}
