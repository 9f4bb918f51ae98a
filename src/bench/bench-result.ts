/**
 * The result of one target's run, as printed with `--json` and written by `--out`. Field names are
 * snake_case like corral's other JSON; latencies in milliseconds; counts are user turns (a `rag`
 * turn is one embed call and one generate call; `calls` counts the HTTP calls themselves).
 */
import type { BenchOptions, Workload } from './bench-options.js'
import type { CacheDelta } from './cache-stats-reader.js'
import type { LatencySummary } from './latency-histogram.js'
import type { RunRecorder } from './run-recorder.js'
import type { BulkResult } from './bulk-job.js'

export interface CallResult {
  /** Calls sent (failed and cancelled ones included). */
  sent: number
  /** Latency of the successful ones. */
  latency_ms: LatencySummary
}

export interface RunResult {
  target: string
  /** Whether the target answered `/api/advanced-cache-stats` like corral. */
  corral: boolean
  workload: Workload
  mode: 'closed' | 'open'
  /** Simulated users (closed loop); null in open loop. */
  users: number | null
  /** Arrival rate asked for (open loop); null in closed loop. */
  rate_per_s: number | null
  stream: boolean
  seed: number
  zipf: number | null
  /** Stopped by Ctrl-C: the numbers are what was done until then. */
  interrupted: boolean
  /** The measured phase, from its first turn to the end of its last. */
  elapsed_s: number
  /** Turns that ended: ok + errors. */
  requests: number
  ok: number
  errors: number
  /** Turns cut short by Ctrl-C, counted neither as ok nor as errors. */
  cancelled: number
  /** errors / requests (0 when none). */
  error_rate: number
  errors_by_kind: Record<string, number>
  /** Successful turns per second of elapsed time. */
  throughput_rps: number
  /** Turns in flight: time-weighted mean and peak (the concurrency the target saw). */
  in_flight: { mean: number; peak: number }
  /** Latency of successful turns. */
  latency_ms: LatencySummary
  /** Time to first token of streamed turns (from the turn's start, so a RAG turn's embedding is included); null when not streaming. */
  ttft_ms: LatencySummary | null
  calls: Record<string, CallResult>
  /** Turns run in the warm-up, not counted anywhere else. */
  warmup_requests: number
  /** corral's cache during the measured phase; null for a plain Ollama or a corral whose cache is off. */
  cache: CacheDelta | null
  /** The bulk job run beside the users (`--bulk`); null without one. */
  bulk: BulkResult | null
}

/** The whole `--json` document. */
export interface BenchReport {
  result: RunResult
  /** The `--compare` target's result, or null. */
  compare: RunResult | null
  /** compare ÷ result for each compared figure, or null. */
  ratios: Record<string, number | null> | null
  slo: { passed: boolean; checks: Array<{ name: string; limit: number; actual: number | null; passed: boolean }> }
}

const round = (n: number, digits: number): number => Math.round(n * 10 ** digits) / 10 ** digits

export function buildRunResult(
  target: string,
  options: Readonly<BenchOptions>,
  recorder: RunRecorder,
  extras: { interrupted: boolean; warmupRequests: number; corral: boolean; cache: CacheDelta | undefined; bulk?: BulkResult | undefined },
): RunResult {
  const requests = recorder.done
  const elapsedS = recorder.elapsedMs / 1000
  const calls: Record<string, CallResult> = {}
  for (const [path, sent] of recorder.callsSent) {
    calls[path] = { sent, latency_ms: recorder.callLatency.get(path)?.summary() ?? { count: 0, min: 0, mean: 0, p50: 0, p95: 0, p99: 0, max: 0 } }
  }
  return {
    target,
    corral: extras.corral,
    workload: options.workload,
    mode: options.mode,
    users: options.mode === 'closed' ? options.concurrency : null,
    rate_per_s: options.ratePerS ?? null,
    stream: options.stream,
    seed: options.seed,
    zipf: options.zipf ?? null,
    interrupted: extras.interrupted,
    elapsed_s: round(elapsedS, 3),
    requests,
    ok: recorder.ok,
    errors: recorder.errors,
    cancelled: recorder.cancelled,
    error_rate: requests === 0 ? 0 : round(recorder.errors / requests, 4),
    errors_by_kind: Object.fromEntries([...recorder.errorsByKind].sort((a, b) => b[1] - a[1])),
    throughput_rps: elapsedS <= 0 ? 0 : round(recorder.ok / elapsedS, 2),
    in_flight: { mean: round(recorder.meanInFlight, 2), peak: recorder.peakInFlight },
    latency_ms: recorder.turns.summary(),
    ttft_ms: options.stream && options.workload !== 'embed' ? recorder.ttft.summary() : null,
    calls,
    warmup_requests: extras.warmupRequests,
    cache: extras.cache ?? null,
    bulk: extras.bulk ?? null,
  }
}
