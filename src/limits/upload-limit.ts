/**
 * Counts the bytes of a streamed upload (blob) on their way to the instance and fails the
 * stream with 413 once they pass the limit. Only chunked uploads need it: node's parser already
 * holds a body to its declared Content-Length, which is checked before anything is sent.
 */
import { Transform, type TransformCallback } from 'node:stream'
import { bodyTooLarge } from '../shared/errors.js'

export class UploadLimit extends Transform {
  readonly #maxBytes: number
  #bytes = 0

  constructor(maxBytes: number) {
    super()
    this.#maxBytes = maxBytes
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.#bytes += chunk.length
    if (this.#bytes > this.#maxBytes) done(bodyTooLarge(this.#maxBytes))
    else done(null, chunk)
  }
}
