/**
 * The soak's samples and its report: one CSV row per sample, then a Markdown summary (memory over
 * time, the faults, totals, failures explained or not, and the memory verdict).
 */
import type { FaultWindow } from './faults.js'

export interface Sample {
  /** Seconds since the load started. */
  t: number
  /** corral's resident set from /proc/PID/status (MiB). */
  rssMiB: number
  /** V8 heap used / total and memory outside the heap (Buffers), from corral's /metrics (MiB). */
  heapUsedMiB: number
  heapTotalMiB: number
  externalMiB: number
  /** Bytes held by the cache's memory tier (sum of its layers, MiB) and its entries. */
  cacheMiB: number
  cacheEntries: number
  /** Requests answered so far, and how many of them failed. */
  requests: number
  failures: number
  /** Requests in flight at the client at that moment. */
  inFlight: number
  /** Fault active at that moment, if any. */
  fault: string
}

export const CSV_HEADER = 't_s,rss_mib,heap_used_mib,heap_total_mib,external_mib,cache_mib,cache_entries,requests,failures,in_flight,fault'

export function csvRow(s: Sample): string {
  const f = (v: number): string => v.toFixed(1)
  return [s.t, f(s.rssMiB), f(s.heapUsedMiB), f(s.heapTotalMiB), f(s.externalMiB), f(s.cacheMiB), s.cacheEntries, s.requests, s.failures, s.inFlight, JSON.stringify(s.fault)].join(',')
}

export interface Failure {
  atS: number
  reason: string
}

export interface SoakResult {
  durationS: number
  rate: number
  faultEveryS: number
  sampleEveryS: number
  samples: Sample[]
  faults: FaultWindow[]
  requests: number
  ok: number
  failures: Failure[]
  /** Requests not sent because the client already had its maximum in flight. */
  skipped: number
  corralExit: number | null
  /** Seconds after which memory counts as warmed up. */
  warmupS: number
  cacheBoundMiB: number
}

/** A cut answer (the fault struck after the answer started) explains a failure during or right after a fault. */
const CUT = /^cut: /
const GRACE_S = 3

export function explained(f: Failure, faults: readonly FaultWindow[]): boolean {
  if (!CUT.test(f.reason)) return false
  return faults.some((w) => f.atS >= w.startS - 0.5 && f.atS <= (Number.isNaN(w.endS) ? Infinity : w.endS + GRACE_S))
}

export function markdown(r: SoakResult): string {
  const lines: string[] = []
  // One row per 30 s (per 60 s beyond 10 minutes) keeps the table readable; the CSV has them all.
  const every = Math.max(1, Math.round((r.durationS > 600 ? 60 : 30) / r.sampleEveryS))
  lines.push(`Soak: ${r.durationS} s at ${r.rate} req/s offered, a fault every ${r.faultEveryS} s, memory sampled every ${r.sampleEveryS} s.`, '')
  lines.push('| t (s) | RSS (MiB) | heap used (MiB) | heap total (MiB) | external (MiB) | cache tier (MiB) | entries | requests | failures | fault at that moment |')
  lines.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |')
  r.samples.forEach((s, i) => {
    if (i % every !== 0 && i !== r.samples.length - 1) return
    lines.push(`| ${s.t} | ${s.rssMiB.toFixed(1)} | ${s.heapUsedMiB.toFixed(1)} | ${s.heapTotalMiB.toFixed(1)} | ${s.externalMiB.toFixed(1)} | ${s.cacheMiB.toFixed(1)} | ${s.cacheEntries} | ${s.requests} | ${s.failures} | ${s.fault || '-'} |`)
  })
  lines.push('', 'Faults:', '')
  for (const w of r.faults) lines.push(`- ${w.startS}-${Number.isNaN(w.endS) ? 'end' : w.endS} s: ${w.what}`)
  const byReason = new Map<string, { explained: number; unexplained: number }>()
  for (const f of r.failures) {
    const entry = byReason.get(f.reason) ?? { explained: 0, unexplained: 0 }
    if (explained(f, r.faults)) entry.explained++
    else entry.unexplained++
    byReason.set(f.reason, entry)
  }
  const unexplained = [...byReason.values()].reduce((n, e) => n + e.unexplained, 0)
  lines.push('', `Requests: ${r.requests} answered (${(r.requests / r.durationS).toFixed(1)}/s), ${r.ok} ok, ${r.failures.length} failed (${r.failures.length - unexplained} explained, ${unexplained} unexplained), ${r.skipped} not sent (client at its in-flight cap).`)
  for (const [reason, e] of byReason) lines.push(`- ${reason}: ${e.explained} explained, ${e.unexplained} unexplained`)
  for (const f of r.failures.filter((x) => !explained(x, r.faults)).slice(0, 20)) lines.push(`  - unexplained at ${f.atS} s: ${f.reason}`)
  lines.push('', memoryVerdict(r), `corral exit status after SIGTERM: ${r.corralExit}`)
  return lines.join('\n')
}

/** Memory after warm-up: growth of RSS and heap from the first sample after warm-up to the end. */
export function memoryVerdict(r: SoakResult): string {
  const warm = r.samples.filter((s) => s.t >= r.warmupS)
  if (warm.length < 2) return 'Memory: run too short for a verdict.'
  const first = warm[0]!
  const last = warm.at(-1)!
  const max = (k: keyof Sample): number => Math.max(...warm.map((s) => s[k] as number))
  const fmt = (v: number): string => `${v >= 0 ? '+' : ''}${v.toFixed(1)}`
  // The cache tier's entries live on the heap and in Buffers: growth beyond theirs is unexplained.
  const grown = last.heapUsedMiB - first.heapUsedMiB + (last.externalMiB - first.externalMiB) - (last.cacheMiB - first.cacheMiB)
  return (
    `Memory after warm-up (t >= ${r.warmupS} s): RSS ${first.rssMiB.toFixed(1)} -> ${last.rssMiB.toFixed(1)} MiB (${fmt(last.rssMiB - first.rssMiB)}, max ${max('rssMiB').toFixed(1)}), ` +
    `heap used ${first.heapUsedMiB.toFixed(1)} -> ${last.heapUsedMiB.toFixed(1)} MiB (${fmt(last.heapUsedMiB - first.heapUsedMiB)}, max ${max('heapUsedMiB').toFixed(1)}), ` +
    `external ${first.externalMiB.toFixed(1)} -> ${last.externalMiB.toFixed(1)} MiB, cache tier ${first.cacheMiB.toFixed(1)} -> ${last.cacheMiB.toFixed(1)} MiB (bound ${r.cacheBoundMiB} MiB); ` +
    `heap + external growth not accounted for by the cache tier: ${fmt(grown)} MiB.`
  )
}
