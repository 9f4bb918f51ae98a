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

/** Powers of ten that are exact doubles. */
const POW10: readonly number[] = Array.from({ length: 23 }, (_, i) => 10 ** i)

/**
 * The shortest decimal that reads back as the float32 `f` (the digits of Go's
 * `FormatFloat(f, 'g', -1, 32)`), as JSON would write that number.
 *
 * For k = 1, 2, ... digits it rounds `f` to k significant digits with double arithmetic and keeps
 * the first that reads back as `f`: `m / 10^p` with exact `m` and `10^p` is the correctly rounded
 * double of that decimal, i.e. what parsing its text gives. When the scaled value is too close to
 * a rounding tie for double arithmetic to be sure, or out of the exact range of powers of ten,
 * `toPrecision` (correctly rounded, about 20x slower) decides instead.
 */
export function float32Text(f: number): string {
  const a = Math.abs(f)
  if (a === 0 || !Number.isFinite(a)) return String(f)
  let e = Math.floor(Math.log10(a))
  if (e >= 0 ? POW10[e]! > a : a * POW10[-e]! < 1) e-- // log10 can be off by one near powers of ten
  // Most float32 values need 7 to 9 digits: start at 7, go down while shorter still reads back,
  // up until one does (the digit counts that read back are all counts from the shortest on).
  let best = roundTo(a, e, 7)
  if (best === undefined) return float32TextSlow(f)
  if (best !== 0) {
    for (let k = 6; k >= 1; k--) {
      const shorter = roundTo(a, e, k)
      if (shorter === undefined) return float32TextSlow(f)
      if (shorter === 0) break
      best = shorter
    }
  } else {
    for (let k = 8; best === 0 && k <= 9; k++) {
      const longer = roundTo(a, e, k)
      if (longer === undefined) return float32TextSlow(f)
      best = longer
    }
    if (best === 0) return float32TextSlow(f)
  }
  return String(f < 0 ? -best : best)
}

/**
 * `a` (> 0, decimal exponent `e`) rounded to `k` significant digits when that reads back as `a`
 * at float32, 0 when it does not, undefined when double arithmetic cannot be sure (then the caller
 * takes the slow path).
 */
function roundTo(a: number, e: number, k: number): number | undefined {
  const p = k - 1 - e
  if (p < 0 || p > 22) return undefined
  const scale = POW10[p]!
  const x = a * scale
  const floor = Math.floor(x)
  if (Math.abs(x - floor - 0.5) < 1e-6) return undefined
  const candidate = (x - floor < 0.5 ? floor : floor + 1) / scale
  return Math.fround(candidate) === a ? candidate : 0
}

/** {@link float32Text} by `toPrecision` alone: the reference, for the cases the fast path leaves. */
export function float32TextSlow(f: number): string {
  // Rounding to more digits is never farther from f, so the digit counts that round-trip form a
  // suffix of 1..9: binary search for its start.
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
  /** The JSON array as bytes (ASCII), rendered once: hits copy it, never re-encode it. */
  #json: Buffer | undefined
  #base64: string | undefined

  private constructor(values: Float32Array | Float64Array, tokens: number, json?: string) {
    this.values = values
    this.tokens = tokens
    this.#json = json === undefined ? undefined : Buffer.from(json, 'latin1')
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

  /** The vector as a JSON array (ASCII bytes), rendered once. */
  json(): Buffer {
    if (this.#json !== undefined) return this.#json
    const { values } = this
    let json = '['
    if (values instanceof Float32Array) {
      for (let i = 0; i < values.length; i++) json += (i === 0 ? '' : ',') + float32Text(values[i]!)
    } else {
      for (let i = 0; i < values.length; i++) json += (i === 0 ? '' : ',') + String(values[i])
    }
    this.#json = Buffer.from(json + ']', 'latin1')
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
