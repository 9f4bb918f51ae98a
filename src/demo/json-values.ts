/**
 * Reading untyped JSON bodies the way Go's encoding/json sees them: records, strings that may be
 * missing, and the stable key order that makes two equal requests hash equally.
 */

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** The string, or '' for anything else (Go's zero value). */
export function str(v: unknown): string {
  return typeof v === 'string' ? v : ''
}

/** JSON with sorted keys, so equal requests hash equally whatever their key order. */
export function stableStringify(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableStringify).join(',')}]`
  if (isRecord(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${stableStringify(v[k])}`).join(',')}}`
  return JSON.stringify(v) ?? 'null'
}

export function pathnameOf(path: string): string {
  const q = path.indexOf('?')
  return q === -1 ? path : path.slice(0, q)
}
