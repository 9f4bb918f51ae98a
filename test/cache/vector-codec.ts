/** The compact vector format and its JSON re-rendering contract. */
import t from 'tap'
import { float32Text, float32TextSlow, StoredVector } from '../../src/cache/vector-codec.js'

/** The fake Ollama's (and Go's) shortest float32 text, by linear search: the reference. */
function reference(f: number): number {
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(f.toPrecision(digits))
    if (Math.fround(candidate) === f) return candidate
  }
  return f
}

t.test('float32 text is the shortest that reads back, like Go', async (t) => {
  let seed = 1
  const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1
  let mismatches = 0
  const scales = [1, 1e-8, 1e-3, 1e5, 1e20, 1e-40, 3e38]
  for (let i = 0; i < 200_000; i++) {
    const f = Math.fround(random() * scales[i % scales.length]!)
    const want = reference(f)
    if (Number(float32Text(f)) !== want || Number(float32TextSlow(f)) !== want) mismatches++
  }
  // Every float32 next to a power of ten and a few exact decimals, the edge of the fast path.
  for (let e = -45; e <= 38; e++) {
    for (const m of [1, 2.5, 5, 9.999999]) {
      const f = Math.fround(m * 10 ** e)
      for (const g of [f, Math.fround(f * (1 + 2 ** -23)), Math.fround(f * (1 - 2 ** -24)), -f]) {
        if (g !== 0 && Number.isFinite(g) && Number(float32Text(g)) !== reference(g)) mismatches++
      }
    }
  }
  t.equal(mismatches, 0, '200,000 random values and the powers of ten agree with the reference')
  t.equal(float32Text(Math.fround(0.1)), '0.1')
  t.equal(float32Text(0), '0')
  t.equal(float32Text(Math.fround(-1.5e-7)), '-1.5e-7')
})

t.test('a 768-dimension vector: at most 3,500 bytes, exact round trip', async (t) => {
  const numbers = Array.from({ length: 768 }, (_, i) => reference(Math.fround(Math.sin(i) / 10)))
  const ollamaJson = JSON.stringify(numbers)
  const v = StoredVector.fromNumbers(numbers, 12, true)
  const stored = v.encode()
  t.ok(stored.length <= 3500, `${stored.length} bytes (Ollama's JSON: ${ollamaJson.length})`)
  const back = StoredVector.decode(stored)!
  t.equal(back.tokens, 12)
  t.equal(back.json().toString(), ollamaJson, 're-rendered text is the instance text')
  for (let shift = 1; shift < 8; shift++) {
    const unaligned = Buffer.alloc(stored.length + shift).fill(0xff)
    stored.copy(unaligned, shift)
    t.same(JSON.parse(StoredVector.decode(unaligned.subarray(shift))!.json().toString()), numbers, `unaligned by ${shift} (Redis replies) decodes too`)
  }
  t.same([...new Float32Array(Buffer.from(back.base64(), 'base64').buffer)], numbers.map(Math.fround), 'base64 is the float32 bytes')
})

t.test('numbers that are not shortest float32 texts are kept as float64, still exact', async (t) => {
  const numbers = [0.1, 0.123456789012, -3.14159265358979]
  const v = StoredVector.fromNumbers(numbers, 0, true)
  t.type(v.values, Float64Array)
  t.same(JSON.parse(StoredVector.decode(v.encode())!.json().toString()), numbers)
  t.equal(StoredVector.decode(Buffer.from([9, 0, 0, 0, 0, 0, 0, 0])), undefined, 'not a vector')
})
