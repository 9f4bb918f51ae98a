import type { ConfigFile } from './schema.js'

const MASK = '***'

/** A copy of the effective config that is safe to print: passwords in URLs are masked. */
export function maskSecrets(config: ConfigFile): ConfigFile {
  const copy = structuredClone(config)
  if (copy.redis) {
    if (copy.redis.url != null) copy.redis.url = maskUrlPassword(copy.redis.url)
    if (copy.redis.cluster != null) copy.redis.cluster = copy.redis.cluster.map(maskUrlPassword)
    if (copy.redis.password != null) copy.redis.password = MASK
  }
  return copy
}

function maskUrlPassword(value: string): string {
  try {
    const url = new URL(value)
    if (url.password === '') return value
    url.password = MASK
    return url.href
  } catch {
    return MASK
  }
}
