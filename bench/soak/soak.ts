/**
 * The soak driver (run by bench/soak/run.sh, which compiles it): a real `corral serve` process in
 * front of three fake Ollama instances and a real redis-server, each behind a fault proxy; an
 * open-loop mixed load (embed, chat, generate; streamed and not; repeated prompts that the cache
 * answers and new ones it cannot) for DURATION seconds, a fault injected every FAULT_EVERY
 * seconds (faults.ts), and corral's memory sampled every SAMPLE_EVERY seconds (RSS from
 * /proc/PID/status; heap and external memory from its /metrics; the cache tier's bytes from
 * /api/advanced-cache-stats). Writes samples.csv, report.md and summary.json to OUT.
 *
 * Environment: ROOT (repository), OUT (results dir), DURATION (600), FAULT_EVERY (30),
 * SAMPLE_EVERY (5), RATE (40 req/s), MAX_IN_FLIGHT (64), CACHE_MIB (32), WARMUP (120 s, or a
 * fifth of DURATION if shorter), REDIS_SERVER (redis-server).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream, readFileSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Agent, request } from 'undici'
import { startFakeOllama } from '../../test/fixtures/fake-ollama.js'
import { ALL_KINDS, sendOne } from '../../test/fixtures/fault-load.js'
import { startFaultProxy } from '../../test/fixtures/fault-proxy.js'
import { rotateFaults, type FaultWindow, type RedisControl } from './faults.js'
import { CSV_HEADER, csvRow, markdown, type Failure, type Sample, type SoakResult } from './report.js'

const env = (name: string, fallback: number): number => (process.env[name] ? Number(process.env[name]) : fallback)
const ROOT = process.env.ROOT ?? process.cwd()
const OUT = process.env.OUT ?? join(ROOT, 'bench', 'results', 'soak')
const DURATION_S = env('DURATION', 600)
const FAULT_EVERY_S = env('FAULT_EVERY', 30)
const SAMPLE_EVERY_S = env('SAMPLE_EVERY', 5)
const RATE = env('RATE', 40)
const MAX_IN_FLIGHT = env('MAX_IN_FLIGHT', 64)
const CACHE_MIB = env('CACHE_MIB', 32)
const WARMUP_S = env('WARMUP', Math.min(120, Math.round(DURATION_S / 5)))
/** Distinct repeated prompts: enough that the cache tier fills and evicts over a long run. */
const HOT_PROMPTS = env('HOT_PROMPTS', 20_000)
const REDIS_SERVER = process.env.REDIS_SERVER ?? 'redis-server'
const MiB = 1024 * 1024

const log = (line: string): void => console.error(`[soak] ${line}`)

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Spawns and resolves once `ready` appears on stdout (stdout is then drained to `logFile`). */
async function spawnReady(command: string, args: string[], ready: string, logFile: string): Promise<ChildProcess> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const sink = createWriteStream(logFile, { flags: 'a' })
  child.stderr.pipe(sink)
  await new Promise<void>((resolve, reject) => {
    let seen = ''
    const onData = (d: Buffer): void => {
      seen += d.toString()
      if (seen.includes(ready)) {
        child.stdout.off('data', onData)
        resolve()
      }
    }
    child.stdout.on('data', onData)
    child.once('exit', (code) => reject(new Error(`${command} exited (${code}) before it was ready: ${seen.slice(-500)}`)))
  })
  child.removeAllListeners('exit')
  child.stdout.pipe(sink)
  return child
}

function startRedis(port: number): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no']
  return spawnReady(REDIS_SERVER, args, 'Ready to accept connections', join(OUT, 'redis.log'))
}

async function metricsOf(url: string): Promise<Map<string, number>> {
  const res = await request(`${url}/metrics`)
  const text = await res.body.text()
  const values = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)(?:\{[^}]*\})? ([0-9.e+-]+)$/.exec(line)
    if (m !== null && !values.has(m[1]!)) values.set(m[1]!, Number(m[2]))
  }
  return values
}

async function cacheUsage(url: string): Promise<{ bytes: number; entries: number }> {
  const res = await request(`${url}/api/advanced-cache-stats`)
  const stats = (await res.body.json()) as { layers: Record<string, { bytes: number; entries: number }> }
  let bytes = 0
  let entries = 0
  for (const layer of Object.values(stats.layers)) {
    bytes += layer.bytes
    entries += layer.entries
  }
  return { bytes, entries }
}

function rssMiBOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = /VmRSS:\s+(\d+) kB/.exec(status)
  return kb === null ? Number.NaN : Number(kb[1]) / 1024
}

async function main(): Promise<void> {
  // The fleet: three instances and Redis, each behind a fault proxy.
  const fakes = await Promise.all([0, 1, 2].map((i) => startFakeOllama({ name: `n${i}`, tokens: 16, tokenDelayMs: 3, numParallel: 8 })))
  const proxies = await Promise.all(fakes.map((f) => startFaultProxy(f.port)))
  const redisPort = await freePort()
  let redisChild = await startRedis(redisPort)
  const redisProxy = await startFaultProxy(redisPort)
  const redis: RedisControl = {
    freeze: () => void redisChild.kill('SIGSTOP'),
    thaw: () => void redisChild.kill('SIGCONT'),
    async kill() {
      const exited = once(redisChild, 'exit')
      redisChild.kill('SIGCONT')
      redisChild.kill('SIGKILL')
      await exited
    },
    async restart() {
      redisChild = await startRedis(redisPort)
    },
  }

  // corral, as a user runs it.
  const port = await freePort()
  const config = join(OUT, 'corral.yaml')
  writeFileSync(
    config,
    [
      `listen: 127.0.0.1:${port}`,
      'log: { level: warn }',
      'instances:',
      ...proxies.map((p, i) => `  - { url: "${p.url}", name: i${i}, max_concurrency: 8 }`),
      'redis:',
      `  url: redis://127.0.0.1:${redisProxy.port}`,
      '  key_prefix: "soak:"',
      `  local_cache_size: ${CACHE_MIB}MiB`,
      'proxy: { first_byte_timeout: 2s }',
      'health: { interval: 5s, timeout: 1s }',
      'server: { drain_timeout: 30s }',
      '',
    ].join('\n'),
  )
  const corral = spawn(process.execPath, [join(ROOT, 'bin', 'corral.js'), 'serve', '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CORRAL_') && k !== 'OLLAMA_HOST')),
  })
  const corralLog = createWriteStream(join(OUT, 'corral.log'))
  corral.stdout.pipe(corralLog)
  corral.stderr.pipe(corralLog)
  const corralExited = once(corral, 'exit') as Promise<[number | null, string | null]>
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; ; i++) {
    try {
      const res = await request(`${url}/healthz`)
      await res.body.dump()
      if (res.statusCode === 200) break
    } catch {
      if (i > 100) throw new Error('corral did not start')
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  log(`corral pid ${corral.pid} at ${url}; instances ${proxies.map((p) => p.url).join(' ')}; redis via :${redisProxy.port}`)

  // The load: open loop, one arrival every 1/RATE s, capped in flight.
  const startedAt = Date.now()
  const sinceStart = (): number => Math.round((Date.now() - startedAt) / 100) / 10
  const dispatcher = new Agent({ connections: MAX_IN_FLIGHT })
  const failures: Failure[] = []
  let requests = 0
  let ok = 0
  let skipped = 0
  let inFlight = 0
  let seq = 0
  const pending = new Set<Promise<void>>()
  const arrive = (): void => {
    if (inFlight >= MAX_IN_FLIGHT) {
      skipped++
      return
    }
    const n = seq++
    const kind = ALL_KINDS[n % ALL_KINDS.length]!
    // Half the requests repeat one of HOT_PROMPTS prompts (cache hits once seen), half are new.
    const prompt = n % 2 === 0 ? `hot-${Math.floor(Math.random() * HOT_PROMPTS)}` : `new-${n}`
    inFlight++
    const p = sendOne(dispatcher, url, kind, prompt, 60_000).then((a) => {
      inFlight--
      requests++
      if (a.reason === 'ok') ok++
      else failures.push({ atS: sinceStart(), reason: a.reason })
      pending.delete(p)
    })
    pending.add(p)
  }
  const stop = new AbortController()
  const arrivals = setInterval(() => {
    for (let i = 0; i < RATE / 20; i++) arrive()
  }, 50)

  // Faults.
  const windows: FaultWindow[] = []
  const faultsDone = rotateFaults({ fakes, proxies, redis }, FAULT_EVERY_S * 1000, startedAt, stop.signal, log, windows)
  const activeFault = (): string => windows.filter((w) => Number.isNaN(w.endS)).map((w) => w.what).join('; ')

  // Samples.
  const samples: Sample[] = []
  const csv = createWriteStream(join(OUT, 'samples.csv'))
  csv.write(`${CSV_HEADER}\n`)
  const sample = async (): Promise<void> => {
    try {
      const [metrics, cache] = await Promise.all([metricsOf(url), cacheUsage(url)])
      const s: Sample = {
        t: Math.round(sinceStart()),
        rssMiB: rssMiBOf(corral.pid!),
        heapUsedMiB: (metrics.get('nodejs_heap_size_used_bytes') ?? Number.NaN) / MiB,
        heapTotalMiB: (metrics.get('nodejs_heap_size_total_bytes') ?? Number.NaN) / MiB,
        externalMiB: (metrics.get('nodejs_external_memory_bytes') ?? Number.NaN) / MiB,
        cacheMiB: cache.bytes / MiB,
        cacheEntries: cache.entries,
        requests,
        failures: failures.length,
        inFlight,
        fault: activeFault(),
      }
      samples.push(s)
      csv.write(`${csvRow(s)}\n`)
      log(`t=${s.t}s rss ${s.rssMiB.toFixed(1)} MiB heap ${s.heapUsedMiB.toFixed(1)} MiB ext ${s.externalMiB.toFixed(1)} MiB cache ${s.cacheMiB.toFixed(1)} MiB req ${requests} fail ${failures.length}`)
    } catch (err) {
      log(`sample failed: ${String(err)}`)
    }
  }
  await sample()
  const sampler = setInterval(() => void sample(), SAMPLE_EVERY_S * 1000)

  await new Promise((resolve) => setTimeout(resolve, DURATION_S * 1000))
  clearInterval(arrivals)
  stop.abort()
  await faultsDone
  log(`load stopped; waiting for ${pending.size} requests in flight`)
  let timer: NodeJS.Timeout | undefined
  await Promise.race([Promise.all([...pending]), new Promise((resolve) => (timer = setTimeout(resolve, 90_000)))])
  clearTimeout(timer)
  clearInterval(sampler)
  await sample()
  csv.end()
  await dispatcher.close()

  corral.kill('SIGTERM')
  const [code] = await corralExited
  await Promise.all([...proxies.map((p) => p.close()), redisProxy.close(), ...fakes.map((f) => f.close())])
  redisChild.kill('SIGCONT')
  redisChild.kill('SIGTERM')

  const result: SoakResult = {
    durationS: DURATION_S,
    rate: RATE,
    faultEveryS: FAULT_EVERY_S,
    sampleEveryS: SAMPLE_EVERY_S,
    samples,
    faults: windows,
    requests,
    ok,
    failures,
    skipped,
    corralExit: code,
    warmupS: WARMUP_S,
    cacheBoundMiB: CACHE_MIB,
  }
  const report = markdown(result)
  writeFileSync(join(OUT, 'report.md'), `${report}\n`)
  writeFileSync(join(OUT, 'summary.json'), `${JSON.stringify({ ...result, samples: undefined }, null, 2)}\n`)
  console.log(report)
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
