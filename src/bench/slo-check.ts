/**
 * Service-level objectives that turn a run into a deployment gate: each flag given is one check on
 * the first target's result; any check missed makes `corral bench` exit 1. A p95 check with no
 * successful turn is missed (there is no latency to vouch for).
 */
import type { SloOptions } from './bench-options.js'
import type { BenchReport, RunResult } from './bench-result.js'
import { ms } from './result-table.js'

export type SloReport = BenchReport['slo']

export function checkSlo(slo: SloOptions, result: RunResult): SloReport {
  const checks: SloReport['checks'] = []
  if (slo.p95MaxMs !== undefined) {
    const actual = result.ok === 0 ? null : result.latency_ms.p95
    checks.push({ name: 'p95_ms', limit: slo.p95MaxMs, actual, passed: actual !== null && actual <= slo.p95MaxMs })
  }
  if (slo.minRps !== undefined) {
    checks.push({ name: 'throughput_rps', limit: slo.minRps, actual: result.throughput_rps, passed: result.throughput_rps >= slo.minRps })
  }
  if (slo.maxErrorRate !== undefined) {
    // With no turn at all there is no evidence either way: missed.
    const actual = result.requests === 0 ? null : result.error_rate
    checks.push({ name: 'error_rate', limit: slo.maxErrorRate, actual, passed: actual !== null && actual <= slo.maxErrorRate })
  }
  return { passed: checks.every((c) => c.passed), checks }
}

const SLO_LABELS: Record<string, { label: string; op: string; format: (n: number) => string }> = {
  p95_ms: { label: 'p95', op: '<=', format: (n) => `${ms(n)} ms` },
  throughput_rps: { label: 'throughput', op: '>=', format: (n) => `${n} req/s` },
  error_rate: { label: 'error rate', op: '<=', format: (n) => `${round2(n * 100)} %` },
}

const round2 = (n: number): number => Math.round(n * 100) / 100

/** `p95 <= 130 ms: 12.3 ms` */
const describe = (c: SloReport['checks'][number]): string => {
  const l = SLO_LABELS[c.name]!
  return `${l.label} ${l.op} ${l.format(c.limit)}: ${c.actual === null ? 'no data' : l.format(c.actual)}`
}

/** One line per check: `SLO p95 <= 130 ms: 12.3 ms ok` / `... MISSED`. */
export function renderSlo(report: SloReport): string {
  return report.checks.map((c) => `SLO ${describe(c)} ${c.passed ? 'ok' : 'MISSED'}`).join('\n')
}

/** The missed checks on one line: `p95 <= 130 ms: 180 ms; error rate <= 1 %: 5 %`. */
export function describeMissed(report: SloReport): string {
  return report.checks
    .filter((c) => !c.passed)
    .map(describe)
    .join('; ')
}
