/**
 * The request target as it is logged: query parameters that usually carry a credential (`key`,
 * `api_key`, `token`, `access_token`, in any case) have their value replaced by `***`. Clients
 * that put a key in the URL (some OpenAI-compatible tools do) must not leave it in the log.
 */

/** Parameter names (lower case) whose values are masked. */
const SECRET_PARAMS: ReadonlySet<string> = new Set(['key', 'api_key', 'apikey', 'token', 'access_token'])
const MASK = '***'

/** `target` for the log: unchanged without a query (no allocation), else with secret values masked. */
export function logTarget(target: string): string {
  const q = target.indexOf('?')
  if (q === -1) return target
  const pairs = target.slice(q + 1).split('&')
  let changed = false
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i]!
    const eq = pair.indexOf('=')
    const name = eq === -1 ? pair : pair.slice(0, eq)
    if (SECRET_PARAMS.has(decodedName(name)) && eq !== -1) {
      pairs[i] = `${name}=${MASK}`
      changed = true
    }
  }
  return changed ? `${target.slice(0, q + 1)}${pairs.join('&')}` : target
}

/** A parameter name as a server would read it: percent-decoded, `+` as space, lower case. */
function decodedName(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' ')).toLowerCase()
  } catch {
    return name.toLowerCase()
  }
}
