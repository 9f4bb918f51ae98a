/**
 * How deeply a JSON text nests, found by one pass over its bytes before it is parsed.
 *
 * Why: V8's JSON.parse does not overflow the stack on deep input, but it is slow on it (10 MB of
 * `[` blocks the event loop for about 9 s on this machine), and every recursive walk after it
 * (JSON.stringify for cache keys and error messages) throws at a few thousand levels. Go's
 * encoding/json, which Ollama uses, refuses more than 10000 levels; real requests (JSON schemas
 * in `format` and `tools`) nest a few dozen at most.
 */

/** Deepest nesting corral accepts in a JSON body. */
export const MAX_JSON_DEPTH = 256

const QUOTE = 0x22
const BACKSLASH = 0x5c
const OPEN_ARRAY = 0x5b
const OPEN_OBJECT = 0x7b
const CLOSE_ARRAY = 0x5d
const CLOSE_OBJECT = 0x7d

/** True when `text` opens more than `max` arrays/objects inside each other (strings are skipped). Stops at the first excess. */
export function nestsDeeperThan(text: Buffer, max: number): boolean {
  let depth = 0
  const n = text.length
  for (let i = 0; i < n; i++) {
    const c = text[i]!
    if (c === QUOTE) {
      // Skip the string: to the next quote not escaped by a backslash.
      for (i++; i < n; i++) {
        const s = text[i]!
        if (s === BACKSLASH) i++
        else if (s === QUOTE) break
      }
    } else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > max) return true
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) {
      depth--
    }
  }
  return false
}
