/** `corral bench` arguments: defaults, and one clear message per bad value. */
import t from 'tap'
import { BENCH_DEFAULTS, BenchUsageError, parseBenchOptions, type RawBenchOptions } from '../../src/bench/bench-options.js'

const URL = 'http://127.0.0.1:11435'

t.test('defaults: closed loop, 8 users, 30 s, rag', async (t) => {
  const o = parseBenchOptions({ url: `${URL}/` })
  t.equal(o.url, URL, 'trailing slash dropped')
  t.equal(o.mode, 'closed')
  t.equal(o.concurrency, BENCH_DEFAULTS.concurrency)
  t.equal(o.durationMs, 30_000)
  t.equal(o.requests, undefined)
  t.equal(o.workload, 'rag')
  t.equal(o.model, 'llama3.2')
  t.equal(o.embedModel, 'nomic-embed-text')
  t.equal(o.timeoutMs, 120_000)
  t.equal(o.warmupMs, 0)
  t.equal(o.stream, false)
  t.equal(o.temperature, 0)
  t.ok(Number.isInteger(o.seed) && o.seed >= 0 && o.seed < 2 ** 32, 'a random seed')
  t.same(o.slo, { p95MaxMs: undefined, minRps: undefined, maxErrorRate: undefined })
  t.ok(Object.isFrozen(o))
})

t.test('--requests alone bounds the run; --rate makes it an open loop with 64 connections', async (t) => {
  t.equal(parseBenchOptions({ url: URL, requests: '50' }).durationMs, undefined)
  const open = parseBenchOptions({ url: URL, rate: '12.5', duration: '2m', seed: '42' })
  t.equal(open.mode, 'open')
  t.equal(open.ratePerS, 12.5)
  t.equal(open.concurrency, 64)
  t.equal(open.durationMs, 120_000)
  t.equal(open.seed, 42)
})

t.test('SLO flags: durations, rates, fractions and percentages', async (t) => {
  const o = parseBenchOptions({ url: URL, p95Max: '130ms', minRps: '30', maxErrorRate: '1%' })
  t.same(o.slo, { p95MaxMs: 130, minRps: 30, maxErrorRate: 0.01 })
  t.equal(parseBenchOptions({ url: URL, maxErrorRate: '0.05' }).slo.maxErrorRate, 0.05)
  t.equal(parseBenchOptions({ url: URL, maxErrorRate: '0' }).slo.maxErrorRate, 0)
})

const cases: Array<[string, RawBenchOptions, RegExp]> = [
  ['no url', {}, /^--url is required/],
  ['not a URL', { url: 'localhost:11434' }, /^--url must be an http\(s\) URL, got "localhost:11434"$/],
  ['not http', { url: 'ftp://a:1' }, /^--url must be an http\(s\) URL/],
  ['a path', { url: 'http://a:1/api' }, /^--url must be an origin without a path/],
  ['compare not a URL', { url: URL, compare: 'x' }, /^--compare must be an http\(s\) URL/],
  ['zero users', { url: URL, concurrency: '0' }, /^--concurrency must be a positive integer, got "0"$/],
  ['fractional users', { url: URL, concurrency: '2.5' }, /^--concurrency must be a positive integer/],
  ['zero rate', { url: URL, rate: '0' }, /^--rate must be a positive number, got "0"$/],
  ['bad duration', { url: URL, duration: 'soon' }, /^--duration must be a duration like 500ms, 30s or 2m, got "soon"$/],
  ['zero duration', { url: URL, duration: '0s' }, /^--duration must be a duration/],
  ['bad requests', { url: URL, requests: '-3' }, /^--requests must be a positive integer/],
  ['bad warmup', { url: URL, warmup: '1 minute' }, /^--warmup must be a duration/],
  ['bad timeout', { url: URL, timeout: '0' }, /^--timeout must be a duration/],
  ['unknown workload', { url: URL, workload: 'search' }, /^--workload must be one of rag, embed, generate, chat, got "search"$/],
  ['bad zipf', { url: URL, zipf: '-1' }, /^--zipf must be a positive number/],
  ['bad seed', { url: URL, seed: 'abc' }, /^--seed must be an integer from 0 to 4294967295/],
  ['seed too large', { url: URL, seed: String(2 ** 32) }, /^--seed must be an integer/],
  ['bad temperature', { url: URL, temperature: '-0.5' }, /^--temperature must be a number >= 0/],
  ['empty model', { url: URL, model: ' ' }, /^--model must not be empty$/],
  ['bad p95', { url: URL, p95Max: 'fast' }, /^--p95-max must be a duration/],
  ['bad min rps', { url: URL, minRps: 'lots' }, /^--min-rps must be a positive number/],
  ['error rate above 1', { url: URL, maxErrorRate: '150%' }, /^--max-error-rate must be a fraction \(0\.01\) or a percentage \(1%\)/],
]

for (const [name, raw, message] of cases) {
  t.test(`refused: ${name}`, async (t) => {
    let caught: unknown
    try {
      parseBenchOptions(raw)
    } catch (err) {
      caught = err
    }
    t.type(caught, BenchUsageError)
    t.match((caught as Error).message, message)
    t.notMatch((caught as Error).message, /\n/, 'one line')
  })
}

t.test('--bulk and --bulk-batch', async (t) => {
  t.equal(parseBenchOptions({ url: URL }).bulkClients, 0, 'no bulk job by default')
  const o = parseBenchOptions({ url: URL, bulk: '12', bulkBatch: '16' })
  t.equal(o.bulkClients, 12)
  t.equal(o.bulkBatch, 16)
  t.equal(parseBenchOptions({ url: URL, bulk: '2' }).bulkBatch, 32)
  t.throws(() => parseBenchOptions({ url: URL, bulk: '0' }))
})
