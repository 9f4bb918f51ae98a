import type { ConfigFile } from './schema.js'

const MASK = '***'

/** A copy of the effective config that is safe to print: passwords in URLs, API keys and the JWT secret are masked. */
export function maskSecrets(config: ConfigFile): ConfigFile {
  const copy = structuredClone(config)
  if (copy.redis) {
    if (copy.redis.url != null) copy.redis.url = maskUrlPassword(copy.redis.url)
    if (copy.redis.cluster != null) copy.redis.cluster = copy.redis.cluster.map(maskUrlPassword)
    if (copy.redis.password != null) copy.redis.password = MASK
  }
  for (const key of copy.auth.keys) if (key.key !== undefined) key.key = MASK
  if (copy.auth.jwt?.secret != null) copy.auth.jwt.secret = MASK
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
