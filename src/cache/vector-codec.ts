/**
 * Embedding vectors stored compactly: an 8-byte header and the raw little-endian floats (a
 * 768-dimension float32 vector takes 3,080 bytes; Ollama's JSON for it about 9,500).
 *
 * The JSON re-rendering contract: an answer rendered from a stored vector parses to exactly the
 * numbers of the instance's answer. Ollama writes float32 values with Go's shortest float32
 * representation (the fewest digits that read back as the same float32), so a float32 vector is
 * rendered the same way and every number reads back as the same float64 the instance's text
 * gives. When a captured vector does not follow that rule (its numbers are not shortest float32
 * texts), it is kept as float64 instead, which renders exactly too. `/api/embeddings` answers
 * are float64 to begin with.
 */

/** First byte of a stored vector: its float width. */
const KIND_F32 = 1
const KIND_F64 = 2
const HEADER_BYTES = 8

/** The shortest decimal that reads back as the float32 `f` (Go's `FormatFloat(f, 'g', -1, 32)` digits). */
export function float32Text(f: number): string {
  // Rounding to more digits is never farther from f, so the digit counts that round-trip form a
  // suffix of 1..9: binary search for its start (3-4 toPrecision calls instead of up to 9).
  let lo = 1
  let hi = 9
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (Math.fround(Number(f.toPrecision(mid))) === f) hi = mid
    else lo = mid + 1
  }
  return String(Number(f.toPrecision(lo)))
}

/** Whether a stored value is a vector. */
export function isVectorValue(value: Buffer): boolean {
  return value.length >= HEADER_BYTES && (value[0] === KIND_F32 || value[0] === KIND_F64)
}

/** One cached embedding: its numbers, the prompt tokens it cost, and its rendered forms (made once). */
export class StoredVector {
  readonly values: Float32Array | Float64Array
  /** Prompt tokens of this input (Ollama's `prompt_eval_count` share). */
  readonly tokens: number
  #json: string | undefined
  #base64: string | undefined

  private constructor(values: Float32Array | Float64Array, tokens: number, json?: string) {
    this.values = values
    this.tokens = tokens
    this.#json = json
  }

  /**
   * From the numbers of an instance's JSON answer. `float32`: the instance wrote float32 values
   * (`/api/embed`, `/v1/embeddings`); kept as float32 only when every number re-renders exactly.
   */
  static fromNumbers(numbers: readonly number[], tokens: number, float32: boolean): StoredVector {
    if (float32) {
      const f32 = Float32Array.from(numbers)
      let json = '['
      let exact = true
      for (let i = 0; i < f32.length; i++) {
        const text = float32Text(f32[i]!)
        if (Number(text) !== numbers[i]) {
          exact = false
          break
        }
        json += (i === 0 ? '' : ',') + text
      }
      if (exact) return new StoredVector(f32, tokens, json + ']')
    }
    return new StoredVector(Float64Array.from(numbers), tokens)
  }

  /** From float32 values as given (OpenAI's base64 encoding): exact by construction. */
  static fromFloat32(values: Float32Array, tokens: number): StoredVector {
    return new StoredVector(values, tokens)
  }

  /** Decodes a stored value; undefined when it is not a vector. */
  static decode(value: Buffer): StoredVector | undefined {
    if (!isVectorValue(value)) return undefined
    const width = value[0] === KIND_F32 ? 4 : 8
    const count = Math.floor((value.length - HEADER_BYTES) / width)
    const tokens = value.readUInt32LE(4)
    // Typed arrays need aligned offsets; Redis replies and pooled buffers may not be, and then
    // the floats are copied into an ArrayBuffer of their own (Buffer.from would use the pool).
    let buffer: ArrayBufferLike = value.buffer
    let offset = value.byteOffset + HEADER_BYTES
    if (offset % width !== 0) {
      const own = new Uint8Array(count * width)
      own.set(value.subarray(HEADER_BYTES, HEADER_BYTES + count * width))
      buffer = own.buffer
      offset = 0
    }
    const values = width === 4 ? new Float32Array(buffer, offset, count) : new Float64Array(buffer, offset, count)
    return new StoredVector(values, tokens)
  }

  /** The stored form: header (kind, tokens) and the raw floats. */
  encode(): Buffer {
    const out = Buffer.allocUnsafe(HEADER_BYTES + this.values.byteLength)
    out.writeUInt32LE(0, 0)
    out[0] = this.values instanceof Float32Array ? KIND_F32 : KIND_F64
    out.writeUInt32LE(this.tokens >>> 0, 4)
    Buffer.from(this.values.buffer, this.values.byteOffset, this.values.byteLength).copy(out, HEADER_BYTES)
    return out
  }

  /** The vector as a JSON array, rendered once. */
  json(): string {
    if (this.#json !== undefined) return this.#json
    const { values } = this
    let json = '['
    if (values instanceof Float32Array) {
      for (let i = 0; i < values.length; i++) json += (i === 0 ? '' : ',') + float32Text(values[i]!)
    } else {
      for (let i = 0; i < values.length; i++) json += (i === 0 ? '' : ',') + String(values[i])
    }
    this.#json = json + ']'
    return this.#json
  }

  /** OpenAI's `encoding_format: base64`: the float32 bytes, little-endian, in base64. */
  base64(): string {
    if (this.#base64 !== undefined) return this.#base64
    const f32 = this.values instanceof Float32Array ? this.values : Float32Array.from(this.values)
    this.#base64 = Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength).toString('base64')
    return this.#base64
  }

  /** Bytes the rendered forms may take in memory at most (for the memory store's accounting). */
  static renderedBytesFor(value: Buffer): number {
    if (!isVectorValue(value)) return 0
    const count = (value.length - HEADER_BYTES) / (value[0] === KIND_F32 ? 4 : 8)
    // float32: at most 15 characters per number ("-1.2345678e-38,"); float64 up to 25. Plus base64.
    return Math.ceil(count * (value[0] === KIND_F32 ? 15 : 25) + count * 6)
  }
}
