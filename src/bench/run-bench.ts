/**
 * `corral bench` from parsed options to exit status: a warm-up, then the measured phase against
 * the target (then the `--compare` target, same workload, same seed), the cache counters read
 * around the measured phase, the result printed (table or `--json`, and `--out`), the SLOs
 * checked.
 *
 * Exit status: 0 done and every SLO met; 1 an SLO missed (each printed on stderr), or, without
 * `--max-error-rate`, every request failed (a run that measured nothing but errors is no pass); 130 stopped by
 * Ctrl-C (SIGINT), after printing the partial result: a cut-short run never passes a gate. The
 * first SIGINT stops issuing turns and gives those in flight up to 2 s to finish, a second one
 * aborts them at once; turns aborted count as cancelled, neither ok nor errors.
 */
import { BulkJob } from './bulk-job.js'
import { constants } from 'node:fs'
import { access, stat, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { BenchUsageError, type BenchOptions } from './bench-options.js'
import { buildRunResult, type BenchReport, type RunResult } from './bench-result.js'
import { cacheDelta, readCacheStats } from './cache-stats-reader.js'
import { runClosedLoop } from './closed-loop.js'
import { compareRatios, renderComparison } from './compare-table.js'
import { IssueBudget } from './issue-budget.js'
import { runOpenLoop } from './open-loop.js'
import { ProgressLine } from './progress-line.js'
import { loadPrompts } from './prompts.js'
import { QuestionPicker } from './question-picker.js'
import { renderResult } from './result-table.js'
import { RunRecorder } from './run-recorder.js'
import { checkSlo, describeMissed, renderSlo } from './slo-check.js'
import { TargetClient } from './target-client.js'
import { UserTurns } from './user-turn.js'

export const EXIT_OK = 0
export const EXIT_SLO_MISSED = 1
export const EXIT_INTERRUPTED = 130
/** How long turns in flight may finish after Ctrl-C before they are aborted. */
const INTERRUPT_GRACE_MS = 2000

export interface BenchIo {
  stdout: NodeJS.WriteStream
  stderr: NodeJS.WriteStream
  /** Emits SIGINT (the process). */
  signals: NodeJS.EventEmitter
}

/** Ctrl-C: the first stops issuing (and aborts in flight after a grace period), the second aborts at once. */
class Interrupt {
  readonly stop = new AbortController()
  readonly cancel = new AbortController()
  #grace: NodeJS.Timeout | undefined
  readonly #signals: NodeJS.EventEmitter
  readonly #onSigint = (): void => {
    if (this.stop.signal.aborted) {
      this.cancel.abort()
      return
    }
    this.stop.abort()
    this.#grace = setTimeout(() => this.cancel.abort(), INTERRUPT_GRACE_MS)
    this.#grace.unref()
  }

  constructor(signals: NodeJS.EventEmitter) {
    this.#signals = signals
    signals.on('SIGINT', this.#onSigint)
  }

  get interrupted(): boolean {
    return this.stop.signal.aborted
  }

  close(): void {
    clearTimeout(this.#grace)
    this.#signals.off('SIGINT', this.#onSigint)
  }
}

export async function runBench(options: Readonly<BenchOptions>, io: BenchIo): Promise<number> {
  const prompts = await loadPrompts(options.promptsFile)
  if (options.outFile !== undefined) await checkWritable(options.outFile)
  const interrupt = new Interrupt(io.signals)
  const progress = new ProgressLine(io.stderr)
  let result: RunResult
  let compare: RunResult | null = null
  try {
    result = await runTarget(options.url, options, prompts, interrupt, progress)
    if (options.compareUrl !== undefined && !interrupt.interrupted) {
      compare = await runTarget(options.compareUrl, options, prompts, interrupt, progress)
    }
  } finally {
    progress.stop()
    interrupt.close()
  }
  const slo = checkSlo(options.slo, result)
  const report: BenchReport = { result, compare, ratios: compare === null ? null : compareRatios(result, compare), slo }
  const json = JSON.stringify(report, null, 2) + '\n'
  if (options.json) io.stdout.write(json)
  else {
    io.stdout.write(compare === null ? renderResult(result) : renderComparison(result, compare))
    if (slo.checks.length > 0) io.stdout.write(`\n${renderSlo(slo)}\n`)
  }
  if (options.outFile !== undefined) await writeFile(options.outFile, json)
  if (interrupt.interrupted) return EXIT_INTERRUPTED
  if (!slo.passed) {
    io.stderr.write(`corral bench: SLO missed: ${describeMissed(slo)}\n`)
    return EXIT_SLO_MISSED
  }
  // The default threshold when no --max-error-rate is given: all requests failed.
  if (options.slo.maxErrorRate === undefined && result.requests > 0 && result.ok === 0) {
    const kinds = Object.entries(result.errors_by_kind)
      .map(([kind, n]) => `${kind} ${n}`)
      .join(', ')
    io.stderr.write(`corral bench: every request failed (${result.errors} errors: ${kinds}); --max-error-rate sets another threshold\n`)
    return EXIT_SLO_MISSED
  }
  return EXIT_OK
}

/** Fails before the run, not after it, when `--out` could not be written. */
async function checkWritable(file: string): Promise<void> {
  const exists = await stat(file).then(
    (s) => s,
    () => undefined,
  )
  try {
    if (exists?.isDirectory()) throw Object.assign(new Error(), { code: 'EISDIR' })
    await access(exists === undefined ? dirname(file) : file, constants.W_OK)
  } catch (err) {
    throw new BenchUsageError(`--out cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`)
  }
}

async function runTarget(
  url: string,
  options: Readonly<BenchOptions>,
  prompts: readonly string[],
  interrupt: Interrupt,
  progress: ProgressLine,
): Promise<RunResult> {
  const client = new TargetClient(url, options.concurrency, options.timeoutMs)
  try {
    // Each target gets the same question sequence: a fresh picker from the same seed.
    const turns = new UserTurns(client, new QuestionPicker(prompts, options.zipf, options.seed), options)
    let warmupRequests = 0
    if (options.warmupMs > 0) {
      const warmup = new RunRecorder()
      progress.start(warmup, `warm-up ${url}`, ` / ${options.warmupMs / 1000}s`)
      await drive(turns, warmup, options, { durationMs: options.warmupMs, requests: undefined }, interrupt)
      warmupRequests = warmup.started
    }
    const before = await readCacheStats(client)
    const recorder = new RunRecorder()
    const limit = options.durationMs !== undefined ? ` / ${options.durationMs / 1000}s` : ''
    progress.start(recorder, url, options.requests !== undefined ? `${limit}  (of ${options.requests} requests)` : limit)
    const bulkJob = options.bulkClients > 0 ? new BulkJob(url, options.bulkClients, options.bulkBatch, options.embedModel, options.timeoutMs) : undefined
    bulkJob?.start()
    await drive(turns, recorder, options, options, interrupt)
    recorder.end()
    const bulk = await bulkJob?.stop()
    progress.stop()
    const after = before?.enabled === true ? await readCacheStats(client) : undefined
    return buildRunResult(url, options, recorder, {
      interrupted: interrupt.interrupted,
      warmupRequests,
      corral: before !== undefined,
      cache: before !== undefined && after !== undefined ? cacheDelta(before.layers, after.layers) : undefined,
      bulk,
    })
  } finally {
    await client.close()
  }
}

async function drive(
  turns: UserTurns,
  recorder: RunRecorder,
  options: Readonly<BenchOptions>,
  limits: { durationMs: number | undefined; requests: number | undefined },
  interrupt: Interrupt,
): Promise<void> {
  const budget = new IssueBudget(limits, interrupt.stop.signal)
  try {
    if (options.mode === 'closed') await runClosedLoop(turns, recorder, options.concurrency, budget, interrupt.cancel.signal)
    else await runOpenLoop(turns, recorder, options.ratePerS!, options.seed, budget, interrupt.cancel.signal)
  } finally {
    budget.close()
  }
}
