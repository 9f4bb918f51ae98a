/**
 * `corral bench` end to end: the real command (`node bin/corral.js bench`, built by `npm test`)
 * against fake Ollama servers on 127.0.0.1: what it prints checked against what the fakes
 * counted, exit statuses (SLOs, bad arguments, Ctrl-C) and the progress line on a terminal.
 * bench-run.ts covers the rest in process (error kinds, streams, corral's cache, open loop).
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import type { BenchReport } from '../../src/bench/bench-result.js'
import { BUILT_IN_QUESTIONS } from '../../src/bench/prompts.js'
import { CORRAL_BIN, nodeCommand, runCli, type CliRun } from '../fixtures/cli-process.js'
import { startFakeOllama, type FakeOllama } from '../fixtures/fake-ollama.js'

// About ten node processes start here; on a busy 2-core machine each takes a few seconds.
t.setTimeout(240_000)

const BIN = CORRAL_BIN
const dir = mkdtempSync(join(tmpdir(), 'corral-bench-'))

const bench = (args: string[]): Promise<CliRun> => runCli(['bench', ...args])

function report(run: CliRun): BenchReport {
  return JSON.parse(run.stdout) as BenchReport
}

async function fake(t: Test, opts: Parameters<typeof startFakeOllama>[0] = {}): Promise<FakeOllama> {
  const f = await startFakeOllama(opts)
  t.teardown(() => f.close())
  return f
}

type Body = { input?: unknown; prompt?: unknown; options?: { temperature?: unknown }; messages?: unknown }
const bodies = (f: FakeOllama, path: string): Body[] => f.requests.filter((r) => r.path === path).map((r) => r.body as Body)

t.test('--requests N: exactly N user turns, as the fake counted them; --json has the documented fields', async (t) => {
  const f = await fake(t)
  const run = await bench(['--url', f.url, '--requests', '25', '--concurrency', '3', '--seed', '5', '--json'])
  t.equal(run.code, 0, run.stderr)
  t.equal(run.stderr, '', 'no progress line without a terminal')
  const { result, compare, ratios, slo } = report(run)
  t.equal(compare, null)
  t.equal(ratios, null)
  t.same(slo, { passed: true, checks: [] })
  t.match(result, {
    target: f.url, corral: false, workload: 'rag', mode: 'closed', users: 3, rate_per_s: null, stream: false, seed: 5, zipf: null,
    interrupted: false, requests: 25, ok: 25, errors: 0, cancelled: 0, error_rate: 0, errors_by_kind: {}, warmup_requests: 0, cache: null, ttft_ms: null,
  })
  t.equal(f.count('/api/embed'), 25)
  t.equal(f.count('/api/generate'), 25)
  t.equal(result.calls['/api/embed']!.sent, 25)
  t.equal(result.calls['/api/generate']!.sent, 25)
  t.equal(result.latency_ms.count, 25)
  t.equal(result.calls['/api/generate']!.latency_ms.count, 25)
  for (const key of ['min', 'mean', 'p50', 'p95', 'p99', 'max'] as const) t.type(result.latency_ms[key], 'number')
  t.ok(result.latency_ms.p50 <= result.latency_ms.p95 && result.latency_ms.p95 <= result.latency_ms.p99 && result.latency_ms.p99 <= result.latency_ms.max)
  t.ok(result.elapsed_s > 0)
  t.ok(Math.abs(result.throughput_rps - result.ok / result.elapsed_s) < 0.05 * result.throughput_rps + 0.01, 'throughput is ok turns per second')
  t.ok(result.in_flight.peak <= 3 && result.in_flight.peak >= 1)
  // The built-in questions in order, each embedded and then asked with retrieved context, temperature 0.
  const embeds = bodies(f, '/api/embed')
  t.same(embeds.map((b) => b.input).sort(), BUILT_IN_QUESTIONS.slice(0, 25).slice().sort())
  for (const b of bodies(f, '/api/generate')) {
    t.match(b.prompt, /^Answer the question using only the context below\.[\s\S]*Question: .+\?\nAnswer:$/)
    t.equal(b.options?.temperature, 0)
  }
  t.equal(f.count('/api/advanced-cache-stats'), 1, 'asked once whether the target is corral (a plain Ollama answers 404)')
})

t.test('the table: counts, throughput, concurrency, latency per call', async (t) => {
  const f = await fake(t)
  const run = await bench(['--url', f.url, '-n', '12', '-c', '2', '--seed', '3'])
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, new RegExp(`^target\\s+${f.url.replace(/\./g, '\\.')}\\n`))
  t.match(run.stdout, /workload\s+rag, closed loop, 2 users, prompts in order, not streamed, seed 3\n/)
  t.match(run.stdout, /requests\s+12 \(12 ok, 0 errors\)\n/)
  t.match(run.stdout, /throughput\s+\d+\.\d\d req\/s\n/)
  t.match(run.stdout, /concurrency\s+2 users, [\d.]+ in flight on average, peak [12]\n/)
  t.match(run.stdout, /latency \(ms\)\s+p50\s+p95\s+p99\s+mean\s+max\s+count\n/)
  t.match(run.stdout, /\nturn\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+12\n/)
  t.match(run.stdout, /\n {2}\/api\/embed\s.*\s12\n {2}\/api\/generate\s.*\s12\n/)
  t.notMatch(run.stdout, /corral cache/, 'no cache rows for a plain Ollama')
})

t.test('SLO flags set the exit status', async (t) => {
  // 8 tokens 5 ms apart: no generation can answer within 1 ms.
  const f = await fake(t, { tokenDelayMs: 5 })
  const base = ['--url', f.url, '--workload', 'generate', '-n', '4', '-c', '2']
  const slow = await bench([...base, '--p95-max', '1ms', '--min-rps', '1000000'])
  t.equal(slow.code, 1)
  t.match(slow.stdout, /\nSLO p95 <= 1\.00 ms: [\d.]+ ms MISSED\nSLO throughput >= 1000000 req\/s: [\d.]+ req\/s MISSED\n$/)
  t.match(slow.stderr, /^corral bench: SLO missed: p95 <= 1\.00 ms: [\d.]+ ms; throughput >= 1000000 req\/s: [\d.]+ req\/s\n$/)
  const ok = await bench([...base, '--p95-max', '1m', '--min-rps', '0.01', '--max-error-rate', '0', '--json'])
  t.equal(ok.code, 0, ok.stderr)
  t.match(report(ok).slo, { passed: true, checks: [{ name: 'p95_ms', limit: 60_000, passed: true }, { name: 'throughput_rps', passed: true }, { name: 'error_rate', actual: 0, passed: true }] })
  t.equal(f.count('/api/generate'), 8)
})

t.test('--compare: both targets, same questions, side by side with ratios', async (t) => {
  const a = await fake(t, { name: 'a' })
  const b = await fake(t, { name: 'b' })
  const args = ['--url', a.url, '--compare', b.url, '--workload', 'embed', '-n', '6', '-c', '2', '--zipf', '1', '--seed', '77']
  const table = await bench(args)
  t.equal(table.code, 0, table.stderr)
  t.match(table.stdout, /^workload\s+embed, closed loop, 2 users, zipf s=1, not streamed, seed 77\n/)
  t.match(table.stdout, new RegExp(`\\n\\s+${a.url.replace(/\./g, '\\.')}\\s+${b.url.replace(/\./g, '\\.')}\\s+ratio\\n`))
  t.match(table.stdout, /\nrequests\s+6\s+6\n/)
  t.match(table.stdout, /\nthroughput \(req\/s\)\s+[\d.]+\s+[\d.]+\s+[\d.]+x\n/)
  t.match(table.stdout, /\nrequest p95 \(ms\)\s+[\d.]+\s+[\d.]+\s+[\d.]+x\n/)
  t.match(table.stdout, /ratio = .+ \/ .+\n$/)
  t.equal(a.count('/api/embed'), 6)
  t.equal(b.count('/api/embed'), 6)
})

t.test('bad arguments: one line on stderr, exit 2, nothing sent', async (t) => {
  const f = await fake(t)
  const cases: Array<[string[], RegExp]> = [
    [['--url', f.url, '--concurrency', '0'], /^corral bench: --concurrency must be a positive integer, got "0"\n$/],
    [['--url', f.url, '--prompts', join(dir, 'missing.txt')], /^corral bench: --prompts cannot read .*missing\.txt: ENOENT\n$/],
    [['--url', f.url, '--bogus'], /^error: unknown option '--bogus'\n/],
    [[], /^corral bench: --url is required/],
  ]
  for (const [args, message] of cases) {
    const run = await bench(args)
    t.equal(run.code, 2, args.join(' '))
    t.match(run.stderr, message)
    t.equal(run.stdout, '')
  }
  t.equal(f.count(), 0)
})

t.test('Ctrl-C: stops, prints the partial result, exits 130', async (t) => {
  const f = await fake(t, { tokenDelayMs: 20 })
  const child = spawn(...nodeCommand([BIN, 'bench', '--url', f.url, '--duration', '60s', '-c', '2', '--json']), { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  let stdout = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  await f.waitForRequests(4, '/api/generate')
  child.kill('SIGINT')
  const [code] = (await once(child, 'close')) as [number | null]
  t.equal(code, 130)
  const { result } = JSON.parse(stdout) as BenchReport
  t.equal(result.interrupted, true)
  t.ok(result.ok >= 2, `${result.ok} turns done before Ctrl-C`)
  t.ok(result.elapsed_s < 60)
  t.equal(result.calls['/api/embed']!.sent, f.count('/api/embed'), 'every call it sent is in the result')
  t.equal(result.ok + result.errors + result.cancelled, f.count('/api/embed'))
  t.equal(result.errors, 0, 'turns cut short are not errors')
})

t.test('a progress line on a terminal', async (t) => {
  const f = await fake(t)
  // script(1) gives the command a pseudo-terminal; -e passes its exit status on.
  const command = nodeCommand([BIN, 'bench', '--url', f.url, '--workload', 'embed', '--duration', '700ms', '-c', '1']).flat().map((a) => `'${a}'`).join(' ')
  const child = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  const [code] = (await once(child, 'close')) as [number | null]
  t.equal(code, 0, out)
  t.match(out, /\r\S+ {2}\d+ done {2}[\d.]+ req\/s {2}0 errors {2}[01] in flight {2}[\d.]+s \/ 0\.7s/)
  t.match(out, /target\s+http:\/\/127\.0\.0\.1:\d+/, 'then the result')
})
