import type { ConfigFile } from './schema.js'

const MASK = '***'

/** A copy of the effective config that is safe to print: passwords in URLs are masked. */
export function maskSecrets(config: ConfigFile): ConfigFile {
  const copy = structuredClone(config)
  if (copy.redis) copy.redis.url = maskUrlPassword(copy.redis.url)
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
