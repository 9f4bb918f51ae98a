/** The seeded PRNG, the Zipf sampler and Poisson inter-arrival times: deterministic and distributed as promised. */
import t from 'tap'
import { Prng } from '../../src/bench/prng.js'
import { QuestionPicker } from '../../src/bench/question-picker.js'
import { ZipfSampler } from '../../src/bench/zipf-sampler.js'

const draw = (n: number, s: number, seed: number, count: number): number[] => {
  const z = new ZipfSampler(n, s, new Prng(seed))
  return Array.from({ length: count }, () => z.next())
}

t.test('the same seed gives the same sequence; another seed another one', async (t) => {
  t.same(draw(40, 1.1, 42, 500), draw(40, 1.1, 42, 500))
  t.not(draw(40, 1.1, 42, 500).join(','), draw(40, 1.1, 43, 500).join(','))
  const a = new Prng(7)
  const b = new Prng(7)
  for (let i = 0; i < 100; i++) {
    const x = a.next()
    t.equal(x, b.next())
    if (!(x >= 0 && x < 1)) t.fail(`out of [0, 1): ${x}`)
  }
})

t.test('zipf: ranks are drawn with probability proportional to 1/k^s', async (t) => {
  const n = 20
  const s = 1.1
  const count = 40_000
  const hist = new Array<number>(n).fill(0)
  for (const r of draw(n, s, 1, count)) hist[r]!++
  const z = new ZipfSampler(n, s, new Prng(1))
  const harmonic = Array.from({ length: n }, (_, k) => 1 / Math.pow(k + 1, s)).reduce((a, b) => a + b)
  t.ok(Math.abs(z.probability(0) - 1 / harmonic) < 1e-12, 'rank 0 has probability 1/H(n,s)')
  for (const k of [0, 1, 4, 19]) {
    const expected = z.probability(k) * count
    // 5 standard deviations of a binomial count: a correct sampler never misses this.
    const sd = Math.sqrt(count * z.probability(k) * (1 - z.probability(k)))
    t.ok(Math.abs(hist[k]! - expected) < 5 * sd, `rank ${k}: ${hist[k]} drawn, ${expected.toFixed(0)} expected`)
  }
  t.ok(hist[0]! > 2 * hist[1]! * 0.9 && hist[1]! > hist[4]! && hist[4]! > hist[19]!, 'skewed towards the first ranks')
  t.ok(hist[0]! / count > 0.25, 'the most asked question is asked often')
})

t.test('zipf: bad parameters are refused', async (t) => {
  t.throws(() => new ZipfSampler(0, 1, new Prng(1)), RangeError)
  t.throws(() => new ZipfSampler(5, 0, new Prng(1)), RangeError)
})

t.test('questions: in order without a skew, seeded draws with one', async (t) => {
  const prompts = ['a', 'b', 'c']
  const inOrder = new QuestionPicker(prompts, undefined, 1)
  t.same(Array.from({ length: 7 }, () => inOrder.next()), ['a', 'b', 'c', 'a', 'b', 'c', 'a'])
  const p1 = new QuestionPicker(prompts, 1.5, 9)
  const p2 = new QuestionPicker(prompts, 1.5, 9)
  const seq = Array.from({ length: 50 }, () => p1.next())
  t.same(Array.from({ length: 50 }, () => p2.next()), seq)
  t.ok(seq.filter((q) => q === 'a').length > seq.filter((q) => q === 'c').length)
})

t.test('poisson arrivals: exponential gaps with the asked mean', async (t) => {
  const rng = new Prng(3)
  const meanMs = 20
  const count = 50_000
  let sum = 0
  let sumSq = 0
  let min = Infinity
  for (let i = 0; i < count; i++) {
    const gap = rng.exponential(meanMs)
    sum += gap
    sumSq += gap * gap
    if (gap < min) min = gap
  }
  const mean = sum / count
  const sd = Math.sqrt(sumSq / count - mean * mean)
  // The sample mean's standard error is mean/sqrt(count), about 0.45 % here.
  t.ok(Math.abs(mean - meanMs) / meanMs < 0.025, `mean gap ${mean.toFixed(3)} ms`)
  t.ok(Math.abs(sd - meanMs) / meanMs < 0.05, `standard deviation ${sd.toFixed(3)} ms equals the mean (exponential)`)
  t.ok(min >= 0, 'no negative gap')
})
