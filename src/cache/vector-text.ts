/**
 * Reading one embedding's JSON text (`[0.1,-0.02,...]`, as an instance wrote it) into floats,
 * straight from the bytes: no string, no array of numbers. Most numbers Ollama writes have at most
 * nine significant digits and a small exponent; for those the integer digits and the power of ten
 * are exact doubles and their quotient is the correctly rounded value, as `JSON.parse` gives it.
 * Any other number is read with `Number()`.
 */
import { isShortestFloat32Text, POW10 } from './float32-format.js'

const MAX_EXACT = 2 ** 53

/** The bytes of JSON numbers and arrays. */
const SPACE = 0x20
const TAB = 0x09
const NEWLINE = 0x0a
const RETURN = 0x0d
const COMMA = 0x2c
const MINUS = 0x2d
const PLUS = 0x2b
const DOT = 0x2e
const ZERO = 0x30
const NINE = 0x39
const OPEN = 0x5b
const CLOSE = 0x5d
const LOWER_E = 0x65
const UPPER_E = 0x45

const isSpace = (c: number): boolean => c === SPACE || c === NEWLINE || c === RETURN || c === TAB

/**
 * The numbers of the JSON array `text[start, end)` (brackets included). `float32`: the instance
 * wrote float32 values (`/api/embed`, `/v1/embeddings`); they are kept as a Float32Array when
 * every number is the shortest text of its float32 (so rendering gives back exactly these
 * numbers), else as a Float64Array. Undefined when the text is not a non-empty array of numbers.
 */
export function parseVectorText(text: Buffer, start: number, end: number, float32: boolean): Float32Array | Float64Array | undefined {
  const count = readVectorText(text, start, end, float32)
  if (count < 0) return undefined
  return readExact ? Float32Array.from(scratch.subarray(0, count)) : scratch.slice(0, count)
}

/** Where {@link readVectorText} leaves the numbers (grown as needed, reused: no garbage per vector). */
let scratch = new Float64Array(1024)
let readExact = false

/**
 * {@link parseVectorText} without allocating: leaves the numbers in {@link readNumbers}()'s
 * first `count` places and returns `count` (-1 when the text is not a vector); {@link readWasExact}
 * tells whether float32 keeps them exactly. Valid until the next call.
 */
export function readVectorText(text: Buffer, start: number, end: number, float32: boolean): number {
  const count = readInto(text, start, end, float32)
  if (count < 0) readExact = false
  return count
}

/** The numbers of the last {@link readVectorText}. */
export function readNumbers(): Float64Array {
  return scratch
}

/** Whether the last {@link readVectorText} read float32 values that float32 keeps exactly. */
export function readWasExact(): boolean {
  return readExact
}

function readInto(text: Buffer, start: number, end: number, float32: boolean): number {
  while (start < end && isSpace(text[start]!)) start++
  while (end > start && isSpace(text[end - 1]!)) end--
  if (text[start] !== OPEN || text[end - 1] !== CLOSE) return -1
  // A number takes two bytes at the least (a digit and a comma): enough room.
  const room = (end - start) >> 1
  if (scratch.length < room) scratch = new Float64Array(room)
  const values = scratch
  let count = 0
  let exact = float32
  let i = start + 1
  const last = end - 1
  while (i < last && isSpace(text[i]!)) i++
  if (i === last) return -1
  while (i < last) {
    // One number: -?digits[.digits][e[+-]digits]
    let negative = false
    if (text[i] === MINUS) {
      negative = true
      i++
    }
    const unsignedStart = i
    let digits = 0
    let significant = 0 // digits counted in `digits` (leading zeros excluded)
    let scale = 0 // digits after the point
    let seen = false
    let c = text[i]!
    while (c >= ZERO && c <= NINE) {
      digits = digits * 10 + (c - ZERO)
      if (digits !== 0) significant++
      seen = true
      c = text[++i]!
    }
    if (c === DOT) {
      c = text[++i]!
      let fraction = false
      while (c >= ZERO && c <= NINE) {
        digits = digits * 10 + (c - ZERO)
        if (digits !== 0) significant++
        scale++
        fraction = true
        c = text[++i]!
      }
      if (!fraction) return -1
    }
    if (!seen) return -1
    let exponent = 0
    if (c === LOWER_E || c === UPPER_E) {
      c = text[++i]!
      let sign = 1
      if (c === MINUS || c === PLUS) {
        if (c === MINUS) sign = -1
        c = text[++i]!
      }
      let expDigits = false
      while (c >= ZERO && c <= NINE) {
        exponent = exponent * 10 + (c - ZERO)
        expDigits = true
        c = text[++i]!
        if (exponent > 9999) return -1
      }
      if (!expDigits) return -1
      exponent *= sign
    }
    const power = scale - exponent // value = digits × 10^-power
    let value: number
    if (significant <= 15 && digits < MAX_EXACT && power >= -22 && power <= 22) {
      value = power >= 0 ? digits / POW10[power]! : digits * POW10[-power]!
      if (exact && (significant > 9 || !isShortestFloat32Text(value, digits, power, significant))) exact = false
    } else {
      value = Number(text.toString('latin1', unsignedStart, i))
      if (!Number.isFinite(value)) return -1
      exact = false
    }
    values[count++] = negative ? -value : value
    while (isSpace(c)) c = text[++i]!
    if (i >= last) break
    if (c !== COMMA) return -1
    i++
    while (i < last && isSpace(text[i]!)) i++
    if (i >= last) return -1 // a trailing comma
  }
  readExact = exact
  return count
}
