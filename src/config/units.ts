/**
 * Durations and sizes as people write them in YAML (`30s`, `5m`, `32MiB`), parsed once at load.
 * Plain numbers are accepted too: milliseconds for durations, bytes for sizes.
 */

const DURATION_UNITS_MS: Readonly<Record<string, number>> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
}

const SIZE_UNITS_BYTES: Readonly<Record<string, number>> = {
  b: 1,
  kb: 1_000,
  mb: 1_000_000,
  gb: 1_000_000_000,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
}

const DURATION_RE = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/i
const SIZE_RE = /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$/i

/** Parses `250ms`, `30s`, `5m`, `1h`, `7d` (or a number of milliseconds); undefined when malformed. */
export function parseDuration(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined
  const match = DURATION_RE.exec(value)
  if (!match) return undefined
  const unit = DURATION_UNITS_MS[match[2]!.toLowerCase()]!
  return Math.round(Number(match[1]) * unit)
}

/** Parses `512B`, `64KiB`, `32MiB`, `1GB` (or a number of bytes); undefined when malformed. */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isInteger(value) && value >= 0 ? value : undefined
  const match = SIZE_RE.exec(value)
  if (!match) return undefined
  const unit = SIZE_UNITS_BYTES[(match[2] ?? 'b').toLowerCase()]!
  return Math.round(Number(match[1]) * unit)
}
