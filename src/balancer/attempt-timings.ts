/**
 * What answers teach: a successful attempt's timings go into its instance's learned concurrency
 * limit and peak-EWMA averages, and Ollama's eval_count into the fleet's expected answer length.
 * Failures never reach here, so a fast error makes an instance less attractive, never more.
 */
import type { AttemptReport, BalancedRequest } from './balanced-request.js'
import type { Instance } from './instance.js'

/** Answer length assumed before any has been seen, in tokens. */
const DEFAULT_EXPECTED_TOKENS = 128
const TOKENS_ALPHA = 0.05

export class AttemptTimings {
  /** Expected tokens of a generated answer, averaged from Ollama's eval_count. */
  expectedTokens = DEFAULT_EXPECTED_TOKENS

  /** Feeds a successful answer's timings into the instance's averages. */
  record(instance: Instance, request: BalancedRequest, report: AttemptReport, now: number): void {
    const { work, modelKey } = request
    if (modelKey !== undefined && work !== undefined) instance.loaded?.add(modelKey)
    if (work === undefined) return
    const timing = instance.timing[work]
    const limit = instance.concurrency[work]
    // Time spent queueing inside the instance is left out of its timings: the score counts the
    // requests in flight against the slots itself, and a peak of queueing would stick.
    if (work === 'generation' && report.evalCount > 0) {
      const ttfb = Math.max(0, report.totalMs - report.evalMs)
      const queuedMs = limit.update(request.level, ttfb, report.evalMs)
      timing.msPerToken.update(report.evalMs / report.evalCount, now)
      timing.ttfbMs.update(ttfb - queuedMs, now)
      this.expectedTokens += TOKENS_ALPHA * (report.evalCount - this.expectedTokens)
    } else if (report.ttfbMs >= 0 && (work === 'embedding' || report.streamed)) {
      // An embedding's whole duration waits for a slot; a stream's headers come with its first token.
      const queuedMs =
        work === 'embedding'
          ? limit.update(request.level, report.totalMs, 0)
          : limit.update(request.level, report.ttfbMs, Math.max(0, report.totalMs - report.ttfbMs))
      timing.ttfbMs.update(report.ttfbMs - queuedMs, now)
    }
  }
}
