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

/** `scheme://user:password@`: the password part of any URL in a text (userinfo holds no / ? # @). */
const URL_PASSWORD_RE = /\b([a-z][a-z0-9+.-]*:\/\/[^\s"'/?#@:]*):[^\s"'/?#@]*@/gi

/** Fields whose values are secrets: never repeated in a message, whatever shape they came in. */
const SECRET_FIELDS: ReadonlySet<string> = new Set(['password', 'secret', 'key', 'key_sha256'])

/** A text (a config problem, an error message) with the password of every URL in it masked. */
export function maskUrlPasswords(text: string): string {
  return text.replace(URL_PASSWORD_RE, `$1:${MASK}@`)
}

/**
 * Whether a config path holds a secret: a secret field (`auth.jwt.secret`, `redis.password`,
 * `auth.keys[0].key`), or a block that holds them given in the wrong shape (`auth.jwt: <secret>`,
 * `auth.keys: [<key>]`).
 */
export function isSecretPath(path: readonly PropertyKey[]): boolean {
  const last = path.at(-1)
  if (typeof last === 'string' && SECRET_FIELDS.has(last)) return true
  if (path[0] !== 'auth') return false
  return (path.length === 2 && (path[1] === 'jwt' || path[1] === 'keys')) || (path.length === 3 && path[1] === 'keys')
}
