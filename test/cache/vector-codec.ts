/** The compact vector format and its JSON re-rendering contract. */
import t from 'tap'
import { float32Text, float32TextSlow } from '../../src/cache/float32-format.js'
import { StoredVector } from '../../src/cache/vector-codec.js'
import { parseVectorText } from '../../src/cache/vector-text.js'
import { scanEmbeddingText } from '../../src/cache/embedding-text.js'

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
  const stored = v.encode()!
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
  t.same(JSON.parse(StoredVector.decode(v.encode()!)!.json().toString()), numbers)
  t.equal(StoredVector.decode(Buffer.from([9, 0, 0, 0, 0, 0, 0, 0])), undefined, 'not a vector')
})

t.test('an instance vector text is read straight from its bytes, float32 only when exact', async (t) => {
  const numbers = Array.from({ length: 768 }, (_, i) => reference(Math.fround(Math.sin(i * 7) / 9)))
  const text = Buffer.from(JSON.stringify(numbers))
  const f32 = parseVectorText(text, 0, text.length, true)
  t.type(f32, Float32Array, 'shortest float32 texts: kept as float32')
  t.same([...f32!], numbers.map(Math.fround))
  const v = StoredVector.fromText(text, 3, true)
  t.equal(v.json(), text, 'a fresh vector answers with the instance text itself')
  t.equal(StoredVector.decode(v.encode()!)!.json().toString(), text.toString(), 'stored and rendered again: the same text')

  // Texts that are not Go's shortest float32: longer (float64 printing), trailing zeros, exponents.
  for (const written of ['[0.1,0.123456789012,-3.14159265358979]', '[-0.004007192415406003,-43.125243920867916]', '[0.50,1e-3]', '[1.5E-7, -2e+3 ,0]', '[12345678901234567890,1e-30]']) {
    const buf = Buffer.from(written)
    const values = parseVectorText(buf, 0, buf.length, true)
    t.same([...values!], JSON.parse(written), `${written}: the numbers JSON.parse gives`)
    const back = StoredVector.decode(StoredVector.fromText(buf, 0, true).encode()!)!
    t.same(JSON.parse(back.json().toString()), JSON.parse(written), `${written}: renders back to the same numbers`)
  }
  t.type(parseVectorText(Buffer.from('[0.1,0.123456789012]'), 0, 20, true), Float64Array, 'more than nine digits: float64')
  t.type(parseVectorText(Buffer.from('[0.5,0.25]'), 0, 10, false), Float64Array, 'float64 when asked')

  for (const bad of ['[]', '[1,]', '[,1]', '[1 2]', '[1,"x"]', '[-]', '[1.]', '[1e]', '1,2', '[1,[2]]', '[1,2']) {
    const buf = Buffer.from(bad)
    t.equal(parseVectorText(buf, 0, buf.length, true), undefined, `${bad} is not a vector`)
    t.equal(StoredVector.fromText(buf, 0, true).encode(), undefined, `${bad} is not stored`)
  }
})

t.test('an /api/embed answer is cut into the texts of its vectors without parsing them', async (t) => {
  const vectors = [[0.5, -0.25], [1e-7, 3], [0.125, 0.0625]]
  const answer = Buffer.from(JSON.stringify({ model: 'm"embeddings":[x', embeddings: vectors, total_duration: 5, load_duration: 7, prompt_eval_count: 9 }))
  const scan = scanEmbeddingText(answer, 'embed', 3)!
  t.ok(scan, 'the field is found past a model name that looks like it')
  t.same([0, 1, 2].map((i) => JSON.parse(answer.toString('latin1', scan.ranges[2 * i], scan.ranges[2 * i + 1])) as unknown), vectors)
  t.equal(scan.promptTokens, 9)
  t.equal(scan.loadNs, 7)
  const spaced = Buffer.from('{ "embeddings" : [ [1, 2] ,\n [3,4] ] , "prompt_eval_count": 2 }')
  t.ok(scanEmbeddingText(spaced, 'embed', 2), 'white space anywhere JSON allows it')
  t.equal(scanEmbeddingText(answer, 'embed', 2), undefined, 'a count other than the inputs sent')
  t.equal(scanEmbeddingText(Buffer.from('{"embeddings":[[1,2],[3,4]]'), 'embed', 2), undefined, 'cut short')
  t.equal(scanEmbeddingText(Buffer.from('{"error":"model not found"}'), 'embed', 1), undefined, 'an error')
  const quoted = Buffer.from('{"x":"\\"embeddings\\":[[2]]","embeddings":[[1]]}')
  const found = scanEmbeddingText(quoted, 'embed', 1)!
  t.equal(quoted.toString('latin1', found.ranges[0], found.ranges[1]), '[1]', 'an escaped look-alike inside a string is passed over')
  t.equal(scanEmbeddingText(Buffer.from('{"x":"\\"embeddings","embeddings":[[1]]}'), 'embed', 1), undefined, 'a look-alike that ends a string: refused, not misread')
  const single = Buffer.from('{"embedding":[0.1,0.2]}')
  const one = scanEmbeddingText(single, 'embeddings', 1)!
  t.equal(single.toString('latin1', one.ranges[0], one.ranges[1]), '[0.1,0.2]')
})
