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
 *
 * A vector fresh from an instance keeps the instance's own text: it answers with those bytes, and
 * reads the numbers only when it is stored (off the answer's path).
 */
import { isFloat32Shortest, writeFloat32 } from './float32-format.js'
import { readNumbers, readVectorText, readWasExact } from './vector-text.js'

/** First byte of a stored vector: its float width. */
const KIND_F32 = 1
const KIND_F64 = 2
const HEADER_BYTES = 8

/** Whether a stored value is a vector. */
export function isVectorValue(value: Buffer): boolean {
  return value.length >= HEADER_BYTES && (value[0] === KIND_F32 || value[0] === KIND_F64)
}

/** One cached embedding: its numbers and the prompt tokens it cost. */
export class StoredVector {
  /** Prompt tokens of this input (Ollama's `prompt_eval_count` share). */
  readonly tokens: number
  #values: Float32Array | Float64Array | undefined
  /** The instance's own JSON text of the vector, while the vector is fresh from an answer. */
  readonly text: Buffer | undefined
  readonly #float32: boolean
  /** The stored form this vector was decoded from, if it was. */
  readonly source: Buffer | undefined
  /** The stored form made from the instance's text (made once; undefined before, null when unreadable). */
  #encoded: Buffer | null | undefined

  private constructor(values: Float32Array | Float64Array | undefined, tokens: number, text?: Buffer, float32 = true, source?: Buffer) {
    this.#values = values
    this.tokens = tokens
    this.text = text
    this.#float32 = float32
    this.source = source
  }

  /**
   * From an instance's JSON text of one vector (`[...]`, exactly the bytes it sent). The numbers
   * are read when first needed ({@link values}); `float32` as for {@link fromNumbers}.
   */
  static fromText(text: Buffer, tokens: number, float32: boolean): StoredVector {
    return new StoredVector(undefined, tokens, text, float32)
  }

  /**
   * From the numbers of an instance's JSON answer. `float32`: the instance wrote float32 values
   * (`/api/embed`, `/v1/embeddings`); kept as float32 only when every number re-renders exactly.
   */
  static fromNumbers(numbers: readonly number[], tokens: number, float32: boolean): StoredVector {
    if (float32) {
      let exact = true
      for (let i = 0; i < numbers.length && exact; i++) exact = isFloat32Shortest(numbers[i]!)
      if (exact) return new StoredVector(Float32Array.from(numbers), tokens)
    }
    return new StoredVector(Float64Array.from(numbers), tokens, undefined, false)
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
    return new StoredVector(values, tokens, undefined, width === 4, value)
  }

  /**
   * The numbers; read from the instance's text on first use. Undefined when that text is not an
   * array of numbers (the vector is then not stored).
   */
  get values(): Float32Array | Float64Array | undefined {
    if (this.#values === undefined && this.text !== undefined) {
      const encoded = this.encode()
      this.#values = encoded === undefined ? undefined : StoredVector.decode(encoded)!.values
    }
    return this.#values
  }

  /**
   * The stored form: header (kind, tokens) and the raw floats; undefined when the numbers are
   * unreadable. From the instance's text it is made once, the numbers read straight into it.
   */
  encode(): Buffer | undefined {
    if (this.text !== undefined && this.#values === undefined) {
      if (this.#encoded === undefined) {
        const count = readVectorText(this.text, 0, this.text.length, this.#float32)
        if (count < 0) {
          this.#encoded = null
        } else {
          const exact = readWasExact()
          const out = Buffer.allocUnsafeSlow(HEADER_BYTES + count * (exact ? 4 : 8))
          out.writeUInt32LE(0, 0)
          out[0] = exact ? KIND_F32 : KIND_F64
          out.writeUInt32LE(this.tokens >>> 0, 4)
          // The store's own buffer starts its ArrayBuffer: the floats are aligned at byte 8.
          const floats = exact ? new Float32Array(out.buffer, HEADER_BYTES, count) : new Float64Array(out.buffer, HEADER_BYTES, count)
          floats.set(readNumbers().subarray(0, count))
          this.#encoded = out
        }
      }
      return this.#encoded ?? undefined
    }
    const values = this.values
    if (values === undefined) return undefined
    const out = Buffer.allocUnsafeSlow(HEADER_BYTES + values.byteLength)
    out.writeUInt32LE(0, 0)
    out[0] = values instanceof Float32Array ? KIND_F32 : KIND_F64
    out.writeUInt32LE(this.tokens >>> 0, 4)
    Buffer.from(values.buffer, values.byteOffset, values.byteLength).copy(out, HEADER_BYTES)
    return out
  }

  /**
   * The vector as a JSON array (ASCII bytes): the instance's own text while the vector has it,
   * else rendered (shortest float32 texts, or float64 ones), once per call; the cache keeps hot
   * renderings ({@link RenderedVectors}).
   */
  json(): Buffer {
    if (this.text !== undefined) return this.text
    const values = this.values!
    const width = values instanceof Float32Array ? 16 : 26 // "-1.2345678e-38," / float64's longest
    let out = scratch.length >= values.length * width + 2 ? scratch : (scratch = Buffer.allocUnsafeSlow(values.length * width + 2))
    let pos = 0
    out[pos++] = 0x5b
    if (values instanceof Float32Array) {
      for (let i = 0; i < values.length; i++) {
        if (i > 0) out[pos++] = 0x2c
        pos = writeFloat32(out, pos, values[i]!)
      }
    } else {
      for (let i = 0; i < values.length; i++) pos += out.write(i === 0 ? String(values[i]) : `,${values[i]}`, pos, 'latin1')
    }
    out[pos++] = 0x5d
    out = Buffer.copyBytesFrom(out, 0, pos)
    return out
  }

  /** OpenAI's `encoding_format: base64`: the float32 bytes, little-endian, in base64. */
  base64(): string {
    const values = this.values!
    const f32 = values instanceof Float32Array ? values : Float32Array.from(values)
    return Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength).toString('base64')
  }
}

/** Where vectors are rendered before they are copied out (grows to the largest vector seen). */
let scratch = Buffer.allocUnsafeSlow(768 * 16 + 2)
