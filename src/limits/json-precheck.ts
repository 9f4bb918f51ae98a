/**
 * What corral refuses in a JSON body before parsing it, found in one pass over its bytes.
 *
 * - Nesting deeper than MAX_JSON_DEPTH. V8's JSON.parse does not overflow the stack on deep
 *   input, but it is slow on it (10 MB of `[` blocks the event loop for about 9 s on this
 *   machine), and every recursive walk after it (JSON.stringify for cache keys and error
 *   messages) throws at a few thousand levels. Go's encoding/json, which Ollama uses, refuses
 *   more than 10000 levels; real requests (JSON schemas in `format` and `tools`) nest a few
 *   dozen at most.
 * - Numbers out of a double's range (`1e400`). JSON.parse makes them Infinity, which
 *   JSON.stringify writes as `null`: a body corral re-serialises (fan-out to every instance)
 *   would silently change meaning. Ollama (Go) refuses them too.
 */

/** Deepest nesting corral accepts in a JSON body. */
export const MAX_JSON_DEPTH = 256

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_ARRAY = 0x5b
const OPEN_OBJECT = 0x7b
const CLOSE_ARRAY = 0x5d
const CLOSE_OBJECT = 0x7d
const MINUS = 0x2d
const DIGIT_0 = 0x30
const DIGIT_9 = 0x39
const LOWER_E = 0x65
const UPPER_E = 0x45
/** Below this many characters, a number without an exponent is always a finite double. */
const SAFE_NUMBER_LENGTH = 300

/** Why `text` is refused (a message for a 400), or undefined. Stops at the first problem. */
export function precheckJson(text: Buffer, maxDepth = MAX_JSON_DEPTH): string | undefined {
  let depth = 0
  const n = text.length
  for (let i = 0; i < n; i++) {
    const c = text[i]!
    if (c === QUOTE) {
      // Skip the string, to the next quote not escaped by a backslash (indexOf is a native scan:
      // strings are most of a body's bytes).
      let end = text.indexOf(QUOTE, i + 1)
      while (end !== -1 && escaped(text, end)) end = text.indexOf(QUOTE, end + 1)
      if (end === -1) return undefined // an unterminated string: JSON.parse says so
      i = end
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > maxDepth) return `request body nests deeper than ${maxDepth} levels`
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--
    } else if (c === MINUS || (c >= DIGIT_0 && c <= DIGIT_9)) {
      const start = i
      let exponent = false
      for (; i + 1 < n; i++) {
        const d = text[i + 1]!
        if (d === LOWER_E || d === UPPER_E) exponent = true
        else if (!((d >= DIGIT_0 && d <= DIGIT_9) || d === 0x2e /* . */ || d === 0x2b /* + */ || d === MINUS)) break
      }
      if (exponent || i - start >= SAFE_NUMBER_LENGTH) {
        const value = Number(text.toString('latin1', start, i + 1))
        if (value === Infinity || value === -Infinity) return `number out of range in request body: ${text.toString('latin1', start, Math.min(i + 1, start + 40))}`
      }
    }
  }
  return undefined
}

/** Whether the byte at `at` is escaped: preceded by an odd number of backslashes. */
function escaped(text: Buffer, at: number): boolean {
  let n = 0
  for (let i = at - 1; i >= 0 && text[i] === BACKSLASH; i--) n++
  return (n & 1) === 1
}
