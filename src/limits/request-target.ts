/**
 * The request target a client sent, reduced to the one path an instance will see. The upstream
 * URL is always `instance origin + this path + query`, so nothing in the target can choose
 * another host or climb out of the API:
 *
 * - absolute-form (`GET http://evil/x`, `http://ok@evil/x`) keeps only its path and query; the
 *   host in it is ignored, as the Host header is (RFC 9112 section 3.2.2);
 * - percent-escapes are decoded and re-encoded canonically, so `%2e%2e`, `%2F` and `%61pi` are
 *   seen by corral's route table exactly as Ollama's router (Go decodes the path) would see them;
 * - backslashes count as slashes, empty and `.` segments are dropped (`//x` -> `/x`), `..`
 *   removes the segment before it, and a `..` above the root is refused (nginx answers 400 too);
 * - a bad escape, invalid UTF-8 or a control character in the path is refused; a fragment is dropped.
 */

/** Path segments that need no decoding or normalising: the fast path for every normal request. */
const PLAIN_PATH = /^(?:\/(?!\.\.?(?:\/|$))[A-Za-z0-9._~:@!$&'()*+,;=-]+)*\/?$/
const ABSOLUTE_FORM = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/
const SEPARATOR = /[\\/]/

/** The normalised target (`/path?query`), or undefined when it must be refused with 400. */
export function normaliseTarget(raw: string): string | undefined {
  let rest = raw
  if (rest.charCodeAt(0) !== 0x2f /* / */) {
    const absolute = ABSOLUTE_FORM.exec(rest)
    if (absolute === null) return undefined // `*`, authority-form, or garbage
    rest = rest.slice(absolute[0].length)
    if (rest.charCodeAt(0) !== 0x2f) rest = `/${rest}`
  }
  const hash = rest.indexOf('#')
  if (hash !== -1) rest = rest.slice(0, hash)
  const q = rest.indexOf('?')
  const path = q === -1 ? rest : rest.slice(0, q)
  if (PLAIN_PATH.test(path)) return rest === raw ? raw : rest
  const canonical = normalisePath(path)
  if (canonical === undefined) return undefined
  return q === -1 ? canonical : canonical + rest.slice(q)
}

function normalisePath(path: string): string | undefined {
  const out: string[] = []
  const raw = path.split(SEPARATOR)
  for (const segment of raw) {
    let decoded: string
    try {
      decoded = decodeURIComponent(segment) // throws on a bad escape or invalid UTF-8
    } catch {
      return undefined
    }
    // A decoded %2F or %5C separates segments too: Go's router sees the decoded path.
    for (const part of decoded.split(SEPARATOR)) {
      if (part === '' || part === '.') continue
      if (part === '..') {
        if (out.pop() === undefined) return undefined
        continue
      }
      if (hasControl(part)) return undefined
      out.push(encodeSegment(part))
    }
  }
  const trailingSlash = out.length > 0 && raw[raw.length - 1] === ''
  return `/${out.join('/')}${trailingSlash ? '/' : ''}`
}

/** Percent-encodes what a path segment may not hold as is (RFC 3986 pchar), nothing else. */
function encodeSegment(segment: string): string {
  return encodeURIComponent(segment).replace(/%(3A|40|24|26|2B|2C|3B|3D)/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
}

function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x20 || c === 0x7f) return true
  }
  return false
}
