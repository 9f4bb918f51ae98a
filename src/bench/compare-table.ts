/**
 * Two runs side by side (`--compare`): the same figures for both targets and their ratio,
 * compare ÷ first (so 0.5x latency means the second target answers in half the time, 2.0x
 * throughput that it serves twice as many turns per second).
 */
import type { RunResult } from './bench-result.js'
import { describeErrors, describeRun, latencySeries, ms, percent } from './result-table.js'
import { textTable } from './text-table.js'

/** The figures compared, each read from a result. */
const RATIO_FIGURES: ReadonlyArray<[string, (r: RunResult) => number | null]> = [
  ['latency_p50', (r) => r.latency_ms.p50],
  ['latency_p95', (r) => r.latency_ms.p95],
  ['latency_p99', (r) => r.latency_ms.p99],
  ['ttft_p50', (r) => r.ttft_ms?.p50 ?? null],
  ['ttft_p95', (r) => r.ttft_ms?.p95 ?? null],
  ['throughput_rps', (r) => r.throughput_rps],
  ['error_rate', (r) => r.error_rate],
]

const ratio = (a: number | null, b: number | null): number | null => (a === null || b === null || a === 0 ? null : Math.round((b / a) * 1000) / 1000)

/** compare ÷ first for each figure; null where the first is 0 or the figure is missing. */
export function compareRatios(first: RunResult, second: RunResult): Record<string, number | null> {
  return Object.fromEntries(RATIO_FIGURES.map(([name, read]) => [name, ratio(read(first), read(second))]))
}

const times = (r: number | null): string => (r === null ? '-' : `${r.toFixed(2)}x`)

export function renderComparison(a: RunResult, b: RunResult): string {
  const rows: string[][] = [['', a.target, b.target, 'ratio']]
  const row = (name: string, va: string, vb: string, r: number | null | undefined = undefined): void => {
    rows.push([name, va, vb, r === undefined ? '' : times(r)])
  }
  row('corral', a.corral ? 'yes' : 'no', b.corral ? 'yes' : 'no')
  row('elapsed (s)', a.elapsed_s.toFixed(2), b.elapsed_s.toFixed(2))
  row('requests', String(a.requests), String(b.requests))
  row('errors', String(a.errors), String(b.errors))
  row('error rate', percent(a.error_rate), percent(b.error_rate), ratio(a.error_rate, b.error_rate))
  row('throughput (req/s)', a.throughput_rps.toFixed(2), b.throughput_rps.toFixed(2), ratio(a.throughput_rps, b.throughput_rps))
  row('mean in flight', a.in_flight.mean.toFixed(1), b.in_flight.mean.toFixed(1))
  const seriesB = new Map(latencySeries(b))
  for (const [name, sa] of latencySeries(a)) {
    const sb = seriesB.get(name)
    if (sb === undefined) continue
    for (const p of ['p50', 'p95', 'p99'] as const) row(`${name} ${p} (ms)`, ms(sa[p]), ms(sb[p]), ratio(sa[p], sb[p]))
  }
  if (a.cache !== null || b.cache !== null) {
    row('cache hit rate', percent(a.cache?.hit_rate ?? null), percent(b.cache?.hit_rate ?? null))
    const layers = Object.keys(a.cache?.layers ?? b.cache?.layers ?? {}) as Array<keyof NonNullable<RunResult['cache']>['layers']>
    for (const layer of layers) row(`  ${layer}`, percent(a.cache?.layers[layer].hit_rate ?? null), percent(b.cache?.layers[layer].hit_rate ?? null))
  }
  const header = `workload     ${describeRun(a)}\n`
  const errors = [a, b]
    .filter((r) => r.errors > 0)
    .map((r) => `errors of ${r.target}: ${r.errors}${describeErrors(r)}\n`)
    .join('')
  const partial = a.interrupted || b.interrupted ? 'interrupted: partial result\n' : ''
  return `${header}${partial}\n${textTable(rows)}\n${errors === '' ? '' : `\n${errors}`}ratio = ${b.target} / ${a.target}\n`
}
