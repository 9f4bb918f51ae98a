/**
 * `corral bench` runs in this process (runBench with captured output, no terminal) against fake
 * Ollama servers and a real corral on 127.0.0.1: error kinds, streams, corral's cache hit rates,
 * the open loop, prompt files and `--compare` JSON, checked against what the fakes counted.
 * (bench-cli.ts runs the real command for exit statuses, signals and the terminal.)
 */
import { EventEmitter } from 'node:events'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import t, { type Test } from 'tap'
import { parseBenchOptions, type RawBenchOptions } from '../../src/bench/bench-options.js'
import type { BenchReport } from '../../src/bench/bench-result.js'
import { BUILT_IN_QUESTIONS } from '../../src/bench/prompts.js'
import { QuestionPicker } from '../../src/bench/question-picker.js'
import { runBench } from '../../src/bench/run-bench.js'
import { startFakeOllama, type FakeOllama } from '../fixtures/fake-ollama.js'
import { startCorral } from '../fixtures/start-corral.js'

const dir = mkdtempSync(join(tmpdir(), 'corral-bench-run-'))

interface Run {
  code: number
  stdout: string
  stderr: string
}

function capture(): { stream: NodeJS.WriteStream; text: () => string } {
  const stream = new PassThrough()
  let text = ''
  stream.on('data', (d: Buffer) => (text += d.toString()))
  return { stream: stream as unknown as NodeJS.WriteStream, text: () => text }
}

async function bench(raw: RawBenchOptions): Promise<Run> {
  const stdout = capture()
  const stderr = capture()
  const code = await runBench(parseBenchOptions(raw), { stdout: stdout.stream, stderr: stderr.stream, signals: new EventEmitter() })
  return { code, stdout: stdout.text(), stderr: stderr.text() }
}

const report = (run: Run): BenchReport => JSON.parse(run.stdout) as BenchReport

async function fake(t: Test, opts: Parameters<typeof startFakeOllama>[0] = {}): Promise<FakeOllama> {
  const f = await startFakeOllama(opts)
  t.teardown(() => f.close())
  return f
}

type Body = { input?: unknown; messages?: unknown }
const bodies = (f: FakeOllama, path: string): Body[] => f.requests.filter((r) => r.path === path).map((r) => r.body as Body)

t.test('errors are counted by kind, as the fake failed them; --max-error-rate gates; --out writes the JSON', async (t) => {
  const f = await fake(t)
  f.script({ kind: 'status', status: 503 }, { path: '/api/generate', times: 3 })
  f.script({ kind: 'status', status: 404, error: 'model "nomic-embed-text" not found' }, { path: '/api/embed', times: 2 })
  const out = join(dir, 'errors.json')
  const run = await bench({ url: f.url, requests: '20', concurrency: '2', json: true, out, maxErrorRate: '10%' })
  t.equal(run.code, 1, 'the error rate SLO is missed')
  t.equal(run.stderr, 'corral bench: SLO missed: error rate <= 10 %: 25 %\n')
  const { result, slo } = report(run)
  t.equal(readFileSync(out, 'utf8'), run.stdout, '--out holds the same JSON')
  t.equal(result.requests, 20)
  t.equal(result.errors, 5)
  t.equal(result.ok, 15)
  t.equal(result.error_rate, 0.25)
  t.same(result.errors_by_kind, { http_503: 3, http_404: 2 })
  t.equal(f.count('/api/embed'), 20)
  t.equal(f.count('/api/generate'), 18, 'a turn whose embedding failed sends no generation')
  t.equal(result.calls['/api/embed']!.sent, 20)
  t.equal(result.calls['/api/generate']!.sent, 18)
  t.equal(result.latency_ms.count, 15, 'latencies are of successful turns')
  t.same(slo.checks, [{ name: 'error_rate', limit: 0.1, actual: 0.25, passed: false }])
})

t.test('streams: time to first token; a cut stream, a timeout and a reset connection are errors of their kind', async (t) => {
  const f = await fake(t)
  f.script({ kind: 'die-after-chunks', chunks: 2 }, { path: '/api/chat' })
  f.script({ kind: 'hang' }, { path: '/api/chat' })
  f.script({ kind: 'refuse' }, { path: '/api/chat' })
  const run = await bench({ url: f.url, workload: 'chat', stream: true, requests: '10', concurrency: '1', timeout: '300ms', json: true })
  t.equal(run.code, 0, run.stderr)
  const { result } = report(run)
  t.equal(f.count('/api/chat'), 10)
  t.equal(result.requests, 10)
  t.equal(result.errors, 3)
  const kinds = result.errors_by_kind
  t.equal(kinds.stream_cut, 1, JSON.stringify(kinds))
  t.equal(kinds.timeout, 1)
  t.equal((kinds.ECONNRESET ?? 0) + (kinds.socket_closed ?? 0), 1, 'the reset connection')
  t.equal(result.ttft_ms!.count, 7)
  t.ok(result.ttft_ms!.p50 <= result.latency_ms.p50, 'the first token comes before the end')
  for (const b of bodies(f, '/api/chat')) t.match(b.messages, [{ role: 'system' }, { role: 'user' }])
})

t.test('an error line in a stream is a stream_error', async (t) => {
  const f = await fake(t)
  f.script({ kind: 'error-after-chunks', chunks: 2 }, { path: '/api/generate', times: 2 })
  const run = await bench({ url: f.url, workload: 'generate', stream: true, requests: '5', concurrency: '1', json: true })
  const { result } = report(run)
  t.same(result.errors_by_kind, { stream_error: 2 })
  t.equal(result.ok, 3)
  t.equal(f.count('/api/generate'), 5)
})

t.test('against corral: cache hit rates per layer from /api/advanced-cache-stats, as the fake saw the misses', async (t) => {
  const f = await fake(t)
  const { url } = await startCorral(t, [f.url])
  const n = 60
  const seed = 9
  const zipf = 1.2
  const picker = new QuestionPicker(BUILT_IN_QUESTIONS, zipf, seed)
  const distinct = new Set(Array.from({ length: n }, () => picker.nextIndex())).size
  t.ok(distinct < n / 2, `${distinct} distinct questions in ${n}: a skewed workload repeats`)
  const run = await bench({ url, requests: String(n), concurrency: '1', zipf: String(zipf), seed: String(seed), json: true })
  t.equal(run.code, 0, run.stderr)
  const { result } = report(run)
  t.equal(result.corral, true)
  t.equal(result.ok, n)
  const cache = result.cache!
  const rate = Math.round(((n - distinct) / n) * 1e4) / 1e4
  t.same(cache.layers.embedding, { hits: n - distinct, misses: distinct, hit_rate: rate })
  t.same(cache.layers.inference, { hits: n - distinct, misses: distinct, hit_rate: rate })
  t.same(cache.layers.chunk, { hits: 0, misses: 0, hit_rate: null })
  t.equal(cache.hits, 2 * (n - distinct))
  t.equal(f.count('/api/embed'), distinct, 'only misses reached the instance')
  t.equal(f.count('/api/generate'), distinct)

  const table = await bench({ url, requests: '10', concurrency: '2', zipf: String(zipf), seed: String(seed) })
  t.equal(table.code, 0, table.stderr)
  t.match(table.stdout, new RegExp(`^target\\s+${url.replace(/\./g, '\\.')} \\(corral\\)\\n`))
  t.match(table.stdout, /\ncorral cache\s+hits\s+misses\s+hit rate\nembedding\s+10\s+0\s+100\.0 %\nchunk\s+0\s+0\s+-\ninference\s+10\s+0\s+100\.0 %\nall layers\s+20\s+0\s+100\.0 %\n$/)
})

t.test('open loop: --rate with --requests sends exactly N (after the warm-up)', async (t) => {
  const f = await fake(t)
  const run = await bench({ url: f.url, workload: 'embed', rate: '200', requests: '15', json: true, warmup: '100ms', seed: '4' })
  t.equal(run.code, 0, run.stderr)
  const { result } = report(run)
  t.match(result, { mode: 'open', rate_per_s: 200, users: null, requests: 15, ok: 15 })
  t.equal(f.count('/api/embed'), 15 + result.warmup_requests, 'the measured turns and the warm-up, nothing else')
})

t.test('--prompts: one question per line, asked in order', async (t) => {
  const f = await fake(t)
  const file = join(dir, 'prompts.txt')
  writeFileSync(file, 'first question\n\n  second question  \n')
  const run = await bench({ url: f.url, workload: 'embed', prompts: file, requests: '4', concurrency: '1' })
  t.equal(run.code, 0, run.stderr)
  t.same(bodies(f, '/api/embed').map((b) => b.input), ['first question', 'second question', 'first question', 'second question'])
})

t.test('--compare --json: both results and their ratios, the same questions against both', async (t) => {
  const a = await fake(t, { name: 'a' })
  const b = await fake(t, { name: 'b' })
  const run = await bench({ url: a.url, compare: b.url, workload: 'embed', requests: '6', concurrency: '2', zipf: '1', seed: '77', json: true })
  t.equal(run.code, 0, run.stderr)
  const r = report(run)
  t.equal(r.result.target, a.url)
  t.equal(r.compare!.target, b.url)
  t.equal(r.compare!.requests, 6)
  for (const key of ['latency_p50', 'latency_p95', 'latency_p99', 'throughput_rps']) t.type(r.ratios![key], 'number', key)
  t.equal(r.ratios!.ttft_p50, null, 'not streamed: no time to first token')
  t.equal(a.count('/api/embed'), 6)
  t.equal(b.count('/api/embed'), 6)
  const asked = (f: FakeOllama): unknown[] => bodies(f, '/api/embed').map((x) => x.input).sort()
  t.same(asked(a), asked(b))
})

t.test('against corral with its cache off: corral, but no cache rows', async (t) => {
  const f = await fake(t)
  const { url } = await startCorral(t, [f.url], { cache: { enabled: false } })
  const json = await bench({ url, workload: 'embed', requests: '3', json: true })
  t.match(report(json).result, { corral: true, cache: null, ok: 3 })
  const table = await bench({ url, workload: 'embed', requests: '3' })
  t.match(table.stdout, /^target\s+\S+ \(corral\)\n/)
  t.match(table.stdout, /\ncorral cache {2}off\n$/)
  t.equal(f.count('/api/embed'), 6)
})

t.test('an --out file that cannot be written is refused before anything is sent', async (t) => {
  const f = await fake(t)
  await t.rejects(bench({ url: f.url, requests: '2', out: join(dir, 'no-such-dir', 'x.json') }), { name: 'Error', message: /^--out cannot write .*x\.json: ENOENT$/ })
  await t.rejects(bench({ url: f.url, requests: '2', out: dir }), { message: /^--out cannot write .*: EISDIR$/ })
  t.equal(f.count(), 0)
})

t.test('every request failed: exit 1 without --max-error-rate; the flag sets another threshold', async (t) => {
  const f = await fake(t)
  f.setDefault({ kind: 'status', status: 500 })
  const run = await bench({ url: f.url, workload: 'embed', requests: '4', concurrency: '2' })
  t.equal(run.code, 1, 'a run of nothing but errors does not pass')
  t.equal(run.stderr, 'corral bench: every request failed (4 errors: http_500 4); --max-error-rate sets another threshold\n')
  const allowed = await bench({ url: f.url, workload: 'embed', requests: '4', concurrency: '2', maxErrorRate: '100%' })
  t.equal(allowed.code, 0, 'an explicit threshold of 100 % lets it pass')
  f.setDefault(undefined)
  f.script({ kind: 'status', status: 500 }, { path: '/api/embed', times: 3 })
  const some = await bench({ url: f.url, workload: 'embed', requests: '4', concurrency: '1' })
  t.equal(some.code, 0, 'some failures alone do not fail the run by default')
})

t.test('--bulk runs batches beside the users and reports them apart', async (t) => {
  const f = await fake(t)
  const run = await bench({ url: f.url, requests: '10', concurrency: '1', workload: 'embed', json: true, bulk: '2', bulkBatch: '5' })
  t.equal(run.code, 0)
  const { result } = report(run)
  t.equal(result.ok, 10, 'the users\' turns are counted as before')
  t.ok(result.bulk !== null && result.bulk.clients === 2 && result.bulk.batch_size === 5)
  t.equal(result.bulk!.errors, 0)
  const batches = bodies(f, '/api/embed').filter((b) => Array.isArray(b.input) && b.input.length === 5)
  t.ok(batches.length >= result.bulk!.batches, 'every batch counted reached the instance')
  t.equal(result.bulk!.latency_ms.count, result.bulk!.batches)
})
