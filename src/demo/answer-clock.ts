/**
 * The times an answer carries (`created_at`, OpenAI's `created`, Ollama's `*_duration` fields):
 * measured, as Ollama reports them, or frozen, so that equal requests get byte-identical answers
 * (the benchmarks check that a proxy relays the stand-in's bytes before they measure anything).
 */

export interface AnswerClock {
  /** `created_at` of a chunk (RFC 3339). */
  createdAt(): string
  /** OpenAI's `created` (Unix seconds). */
  unixSeconds(): number
  /** A `*_duration` field: what was measured, or the time model's nominal value when frozen. */
  duration(measuredNs: bigint | number, nominalNs: number): number
}

export const REAL_CLOCK: AnswerClock = {
  createdAt: () => new Date().toISOString(),
  unixSeconds: () => Math.floor(Date.now() / 1000),
  duration: (measuredNs) => Number(measuredNs),
}

const FROZEN_AT = '2026-01-15T10:21:09.538216Z'

export const FROZEN_CLOCK: AnswerClock = {
  createdAt: () => FROZEN_AT,
  unixSeconds: () => Math.floor(Date.parse(FROZEN_AT) / 1000),
  duration: (_measuredNs, nominalNs) => Math.round(nominalNs),
}
