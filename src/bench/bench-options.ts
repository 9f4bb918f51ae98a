/**
 * `corral bench` options: parsed and validated once from the command line into a frozen object;
 * the first problem is reported as one line (exit status 2), like `check-config`.
 */
import { randomInt } from 'node:crypto'
import { parseDuration } from '../config/units.js'

export const WORKLOADS = ['rag', 'embed', 'generate', 'chat'] as const
export type Workload = (typeof WORKLOADS)[number]

/** Defaults, named so that `--help` and README quote the same values. */
export const BENCH_DEFAULTS = {
  concurrency: 8,
  /** Connections (and so requests in flight) allowed in open-loop mode. */
  openLoopConnections: 64,
  duration: '30s',
  timeout: '2m',
  model: 'llama3.2',
  embedModel: 'nomic-embed-text',
  workload: 'rag' as Workload,
  temperature: 0,
} as const

/** What the command line gives (commander's strings and booleans). */
export interface RawBenchOptions {
  url?: string
  compare?: string
  concurrency?: string
  rate?: string
  duration?: string
  requests?: string
  warmup?: string
  timeout?: string
  model?: string
  embedModel?: string
  workload?: string
  prompts?: string
  zipf?: string
  stream?: boolean
  seed?: string
  temperature?: string
  json?: boolean
  out?: string
  p95Max?: string
  minRps?: string
  maxErrorRate?: string
  bulk?: string
  bulkBatch?: string
}

/** Service-level objectives checked against the (first) target's result. */
export interface SloOptions {
  p95MaxMs: number | undefined
  minRps: number | undefined
  /** A fraction, 0..1. */
  maxErrorRate: number | undefined
}

export interface BenchOptions {
  /** Target origin, without a trailing slash. */
  url: string
  /** Second target run right after the first, with the same workload and seed. */
  compareUrl: string | undefined
  /** closed: `concurrency` users, each sending its next request when the last one ends; open: Poisson arrivals at `ratePerS`. */
  mode: 'closed' | 'open'
  /** Users (closed loop), or the connection cap (open loop). */
  concurrency: number
  ratePerS: number | undefined
  /** Measured phase length; undefined when only `requests` bounds the run. */
  durationMs: number | undefined
  /** Requests (user turns) of the measured phase; undefined when only the duration bounds it. */
  requests: number | undefined
  warmupMs: number
  timeoutMs: number
  model: string
  embedModel: string
  workload: Workload
  promptsFile: string | undefined
  zipf: number | undefined
  stream: boolean
  seed: number
  temperature: number
  json: boolean
  outFile: string | undefined
  slo: SloOptions
  /** Clients of a bulk job run beside the users (`--bulk`); 0: none. */
  bulkClients: number
  /** Inputs per batch of the bulk job (`--bulk-batch`). Default 32. */
  bulkBatch: number
}

/** A bad command line: the message is printed as is, exit status 2. */
export class BenchUsageError extends Error {}

const fail = (message: string): never => {
  throw new BenchUsageError(message)
}

function origin(flag: string, value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return fail(`${flag} must be an http(s) URL, got ${JSON.stringify(value)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`${flag} must be an http(s) URL, got ${JSON.stringify(value)}`)
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') fail(`${flag} must be an origin without a path, got ${JSON.stringify(value)}`)
  return url.origin
}

function positiveInt(flag: string, value: string): number {
  const n = Number(value)
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1) fail(`${flag} must be a positive integer, got ${JSON.stringify(value)}`)
  return n
}

function positiveNumber(flag: string, value: string): number {
  const n = Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n <= 0) fail(`${flag} must be a positive number, got ${JSON.stringify(value)}`)
  return n
}

function duration(flag: string, value: string, allowZero = false): number {
  const ms = parseDuration(value.trim())
  if (ms === undefined || (!allowZero && ms === 0)) fail(`${flag} must be a duration like 500ms, 30s or 2m, got ${JSON.stringify(value)}`)
  return ms!
}

/** `0.01` or `1%`. */
function fraction(flag: string, value: string): number {
  const percent = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value)
  const n = percent ? Number(percent[1]) / 100 : Number(value)
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) fail(`${flag} must be a fraction (0.01) or a percentage (1%), got ${JSON.stringify(value)}`)
  return n
}

function name(flag: string, value: string): string {
  if (value.trim() === '') fail(`${flag} must not be empty`)
  return value.trim()
}

export function parseBenchOptions(raw: RawBenchOptions): Readonly<BenchOptions> {
  if (raw.url === undefined) fail('--url is required (the Ollama-compatible target, e.g. http://127.0.0.1:11435)')
  const url = origin('--url', raw.url!)
  const compareUrl = raw.compare === undefined ? undefined : origin('--compare', raw.compare)
  const workload = raw.workload ?? BENCH_DEFAULTS.workload
  if (!(WORKLOADS as readonly string[]).includes(workload)) fail(`--workload must be one of ${WORKLOADS.join(', ')}, got ${JSON.stringify(workload)}`)
  const ratePerS = raw.rate === undefined ? undefined : positiveNumber('--rate', raw.rate)
  const mode = ratePerS === undefined ? 'closed' : 'open'
  const concurrency =
    raw.concurrency !== undefined
      ? positiveInt('--concurrency', raw.concurrency)
      : mode === 'closed'
        ? BENCH_DEFAULTS.concurrency
        : BENCH_DEFAULTS.openLoopConnections
  const requests = raw.requests === undefined ? undefined : positiveInt('--requests', raw.requests)
  let durationMs = raw.duration === undefined ? undefined : duration('--duration', raw.duration)
  // Bounded always: without either limit the run lasts the default duration.
  if (durationMs === undefined && requests === undefined) durationMs = parseDuration(BENCH_DEFAULTS.duration)
  const zipf = raw.zipf === undefined ? undefined : positiveNumber('--zipf', raw.zipf)
  let seed: number
  if (raw.seed === undefined) seed = randomInt(0, 2 ** 32)
  else {
    seed = Number(raw.seed)
    if (!/^\s*\d+\s*$/.test(raw.seed) || !Number.isSafeInteger(seed) || seed >= 2 ** 32) fail(`--seed must be an integer from 0 to 4294967295, got ${JSON.stringify(raw.seed)}`)
  }
  let temperature: number = BENCH_DEFAULTS.temperature
  if (raw.temperature !== undefined) {
    temperature = Number(raw.temperature)
    if (raw.temperature.trim() === '' || !Number.isFinite(temperature) || temperature < 0) fail(`--temperature must be a number >= 0, got ${JSON.stringify(raw.temperature)}`)
  }
  if (raw.out !== undefined && raw.out.trim() === '') fail('--out must not be empty')
  if (raw.prompts !== undefined && raw.prompts.trim() === '') fail('--prompts must not be empty')
  return Object.freeze({
    url,
    compareUrl,
    mode,
    concurrency,
    ratePerS,
    durationMs,
    requests,
    warmupMs: raw.warmup === undefined ? 0 : duration('--warmup', raw.warmup, true),
    timeoutMs: duration('--timeout', raw.timeout ?? BENCH_DEFAULTS.timeout),
    model: name('--model', raw.model ?? BENCH_DEFAULTS.model),
    embedModel: name('--embed-model', raw.embedModel ?? BENCH_DEFAULTS.embedModel),
    workload: workload as Workload,
    promptsFile: raw.prompts,
    zipf,
    stream: raw.stream === true,
    seed,
    temperature,
    json: raw.json === true,
    outFile: raw.out,
    bulkClients: raw.bulk === undefined ? 0 : positiveInt('--bulk', raw.bulk),
    bulkBatch: raw.bulkBatch === undefined ? 32 : positiveInt('--bulk-batch', raw.bulkBatch),
    slo: Object.freeze({
      p95MaxMs: raw.p95Max === undefined ? undefined : duration('--p95-max', raw.p95Max),
      minRps: raw.minRps === undefined ? undefined : positiveNumber('--min-rps', raw.minRps),
      maxErrorRate: raw.maxErrorRate === undefined ? undefined : fraction('--max-error-rate', raw.maxErrorRate),
    }),
  })
}
