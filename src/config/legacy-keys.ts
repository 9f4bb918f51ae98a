/**
 * Keys that moved, rewritten to their new place before validation so older configuration files
 * keep working. Each entry says where the key went; the new key wins when both are set.
 */

const READ_WHOLE_KINDS = ['generation', 'embedding', 'model', 'other'] as const

/**
 * `proxy.max_body_size` (one limit for every body read whole) became
 * `limits.max_body_size.{generation,embedding,model,other}`; uploads were never limited by it.
 * Returns a new object; `raw` is not changed.
 */
export function migrateLegacyKeys(raw: Record<string, unknown>): Record<string, unknown> {
  const proxy = asObject(raw.proxy)
  if (proxy === undefined || !('max_body_size' in proxy)) return raw
  const { max_body_size: legacy, ...restProxy } = proxy
  const limits = asObject(raw.limits) ?? {}
  const sizes = { ...(asObject(limits.max_body_size) ?? {}) }
  for (const kind of READ_WHOLE_KINDS) if (!(kind in sizes)) sizes[kind] = legacy
  return { ...raw, proxy: restProxy, limits: { ...limits, max_body_size: sizes } }
}

function asObject(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
}
