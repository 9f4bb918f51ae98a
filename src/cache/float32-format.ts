/**
 * Shortest decimal text of float32 values, as Ollama (Go's `FormatFloat(f, 'g', -1, 32)`) writes
 * them: the fewest significant digits that read back as the same float32, the closest such
 * decimal. Written straight into bytes for the hit path (a 768-d vector renders in tens of
 * microseconds, no string per number), and found without text for the capture path's check that
 * an instance's numbers are such texts.
 */

/** Powers of ten that are exact doubles (10^0 to 10^22). */
export const POW10 = Float64Array.from({ length: 23 }, (_, i) => 10 ** i)
const LOG10_2 = Math.log10(2)
/** A float32's bits, for its binary exponent. */
const bits = new Float32Array(1)
const words = new Uint32Array(bits.buffer)

/**
 * The result of {@link shortestDigits}: `digits × 10^-scale` is the shortest decimal. Module
 * state rather than an object per number, so the hot loops allocate nothing.
 */
let outDigits = 0
let outScale = 0

/**
 * Finds the shortest decimal that reads back as the float32 `a` (> 0, finite) and leaves it in
 * `outDigits` / `outScale`; false when double arithmetic cannot be sure (a rounding tie too close
 * to call, or a scale outside the exact powers of ten), and the caller takes the slow path.
 *
 * For k = 7, then fewer while fewer still read back (or more, 8 and 9, until one does), it rounds
 * `a` to k significant digits with double arithmetic: `m / 10^p` with exact `m` and `10^p` is the
 * correctly rounded double of that decimal, i.e. what parsing its text gives. The digit counts
 * that read back are all counts from the shortest on, so the first miss going down ends the
 * search.
 */
export function shortestDigits(a: number): boolean {
  // The decimal exponent from the binary one (floor(e2 × log10 2), off by at most one), then fixed.
  bits[0] = a
  let e = Math.floor((((words[0]! >>> 23) & 0xff) - 127) * LOG10_2)
  if (e >= 0 ? POW10[e]! > a : a * POW10[-e]! < 1) e--
  else if (e + 1 >= 0 ? POW10[e + 1]! <= a : a * POW10[-e - 1]! >= 1) e++
  let best = roundTo(a, e, 7)
  if (best < 0) return false
  let bestScale = 6 - e
  if (best !== 0) {
    for (let k = 6; k >= 1; k--) {
      const shorter = roundTo(a, e, k)
      if (shorter < 0) return false
      if (shorter === 0) break
      best = shorter
      bestScale = k - 1 - e
    }
  } else {
    for (let k = 8; best === 0 && k <= 9; k++) {
      best = roundTo(a, e, k)
      if (best < 0) return false
      bestScale = k - 1 - e
    }
    if (best === 0) return false
  }
  outDigits = best
  outScale = bestScale
  return true
}

/**
 * `a` (decimal exponent `e`) rounded to `k` significant digits, as the integer `m` of
 * `m × 10^-(k-1-e)`, when that reads back as `a` at float32; 0 when it does not; -1 when double
 * arithmetic cannot be sure.
 */
function roundTo(a: number, e: number, k: number): number {
  const p = k - 1 - e
  if (p < 0 || p > 22) return -1
  const scale = POW10[p]!
  const x = a * scale
  const floor = Math.floor(x)
  if (Math.abs(x - floor - 0.5) < 1e-6) return -1
  const m = x - floor < 0.5 ? floor : floor + 1
  return Math.fround(m / scale) === a ? m : 0
}

/**
 * Whether the decimal `digits` × 10^-`scale` (as an instance wrote it: `significant` digits, no
 * more than nine; `value` its correctly rounded double, positive) is the shortest float32 text of
 * `Math.fround(value)`, the one Go writes: then a vector kept as float32 renders back to exactly
 * these numbers. Two roundings decide it, with the decimal exponent taken from the text (no
 * search): `digits` is the float32 rounded to its own digit count, and one digit fewer does not
 * read back. False also when double arithmetic cannot be sure (the caller keeps float64 then,
 * which is exact too).
 */
export function isShortestFloat32Text(value: number, digits: number, scale: number, significant: number): boolean {
  if (digits === 0) return true
  const a = Math.fround(value)
  if (scale < 0 || scale > 22) return false
  let x = a * POW10[scale]!
  let floor = Math.floor(x)
  if (Math.abs(x - floor - 0.5) < 1e-6 || (x - floor < 0.5 ? floor : floor + 1) !== digits) return false
  if (significant === 1) return true
  if (scale < 1) return false
  const shorter = POW10[scale - 1]!
  x = a * shorter
  floor = Math.floor(x)
  if (Math.abs(x - floor - 0.5) < 1e-6) return false
  return Math.fround((x - floor < 0.5 ? floor : floor + 1) / shorter) !== a
}

/**
 * Whether the double `value` is exactly the number the shortest float32 text of
 * `Math.fround(value)` reads back as: a vector of such numbers kept as float32 renders back to
 * exactly these numbers. False also when it cannot be told cheaply (keep float64 then).
 */
export function isFloat32Shortest(value: number): boolean {
  const a = Math.abs(value)
  if (a === 0) return true
  if (!Number.isFinite(a) || !shortestDigits(Math.fround(a))) return false
  return outDigits / POW10[outScale]! === a
}

/** Writes the shortest float32 text of `f` into `out` at `pos`, as JSON writes that number; returns the end. */
export function writeFloat32(out: Buffer, pos: number, f: number): number {
  if (f === 0 || !Number.isFinite(f)) return pos + out.write(String(f), pos, 'latin1')
  const a = Math.abs(f)
  if (!shortestDigits(a)) return pos + out.write(float32TextSlow(f), pos, 'latin1')
  if (f < 0) out[pos++] = 0x2d // -
  let m = outDigits
  let scale = outScale
  while (m % 10 === 0) {
    m /= 10
    scale--
  }
  // The digits of m, written backwards into place once their count is known.
  let count = 1
  for (let t = m; t >= 10; t = Math.floor(t / 10)) count++
  const exponent = count - 1 - scale // of the leading digit
  if (exponent < -7 || exponent >= 21) {
    // Exponent notation, as JavaScript writes it: d[.ddd]e±x.
    pos = writeDigits(out, pos, m, count, count > 1 ? 1 : 0)
    out[pos++] = 0x65 // e
    out[pos++] = exponent < 0 ? 0x2d : 0x2b
    return pos + out.write(String(Math.abs(exponent)), pos, 'latin1')
  }
  if (scale <= 0) {
    pos = writeDigits(out, pos, m, count, 0)
    for (let i = 0; i < -scale; i++) out[pos++] = 0x30
    return pos
  }
  if (scale >= count) {
    out[pos++] = 0x30 // 0
    out[pos++] = 0x2e // .
    for (let i = 0; i < scale - count; i++) out[pos++] = 0x30
    return writeDigits(out, pos, m, count, 0)
  }
  return writeDigits(out, pos, m, count, count - scale)
}

/** Writes the `count` digits of `m`, with a decimal point after the first `point` of them when point > 0. */
function writeDigits(out: Buffer, pos: number, m: number, count: number, point: number): number {
  const end = pos + count + (point > 0 ? 1 : 0)
  let at = end
  for (let i = count; i > 0; i--) {
    if (point > 0 && i === point) out[--at] = 0x2e
    const q = Math.floor(m / 10)
    out[--at] = 0x30 + (m - q * 10)
    m = q
  }
  return end
}

/** The shortest float32 text of `f` as a string (tests, and the odd caller off the hot path). */
export function float32Text(f: number): string {
  const scratch = Buffer.allocUnsafe(32)
  return scratch.toString('latin1', 0, writeFloat32(scratch, 0, f))
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
