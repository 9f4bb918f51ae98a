/**
 * Where configuration comes from, in order of precedence: CLI flags > environment (`CORRAL_*`) >
 * the YAML file > defaults. Every problem is collected and reported together, each with its path.
 */
import { readFileSync } from 'node:fs'
import { parseDocument } from 'yaml'
import type { z } from 'zod'
import { configSchema, type ConfigFile } from './schema.js'
import { compileConfig, type Config } from './config.js'
import { migrateLegacyKeys } from './legacy-keys.js'
import { isSecretPath, maskUrlPasswords } from './mask-secrets.js'

/** Overrides given on the command line. */
export interface ConfigFlags {
  listen?: string | undefined
  /** Comma-separated instance origins. */
  instances?: string | undefined
  redis?: string | undefined
  logLevel?: string | undefined
}

export interface ConfigSources {
  /** YAML file; when absent, `CORRAL_CONFIG` is used if set, else defaults only. */
  file?: string | undefined
  env: Readonly<Record<string, string | undefined>>
  flags?: ConfigFlags
}

export interface LoadedConfig {
  config: Config
  /** The effective configuration in file form (defaults filled, secrets not yet masked). */
  effective: ConfigFile
  /** The file that was read, if any. */
  file: string | undefined
}

/**
 * Raised when the configuration cannot be used; `problems` holds one line per problem. The
 * lines reach `check-config`, the reload's 422 and the log: the password of any URL in them is
 * masked here, and a secret field's value is never repeated (see formatIssue).
 */
export class ConfigError extends Error {
  readonly code = 'CORRAL_INVALID_CONFIG'
  readonly problems: readonly string[]
  constructor(problems: readonly string[], source: string | undefined) {
    const masked = problems.map(maskUrlPasswords)
    super(`invalid configuration${source ? ` in ${source}` : ''}:\n${masked.map((p) => `  - ${p}`).join('\n')}`)
    this.name = 'ConfigError'
    this.problems = masked
  }
}

/** Reads, merges, validates and compiles the configuration; throws `ConfigError` listing every problem. */
export function loadConfig(sources: ConfigSources): LoadedConfig {
  const { env } = sources
  const file = sources.file ?? (env.CORRAL_CONFIG || undefined)
  const problems: string[] = []
  let raw: Record<string, unknown> = {}
  if (file !== undefined) {
    const parsed = readYaml(file, problems)
    if (parsed !== undefined) raw = interpolate(parsed, env, [], problems) as Record<string, unknown>
  }
  if (problems.length > 0) throw new ConfigError(problems, file)

  applyOverrides(raw, {
    listen: env.CORRAL_LISTEN,
    instances: env.CORRAL_INSTANCES,
    redis: env.CORRAL_REDIS_URL,
    logLevel: env.CORRAL_LOG_LEVEL,
  })
  if (sources.flags) applyOverrides(raw, sources.flags)
  return { ...configFromObject(raw, env, file), file }
}

/**
 * Validates and compiles an already merged configuration object (as it would come from YAML).
 * Missing `instances` default to `$OLLAMA_HOST`, else http://127.0.0.1:11434.
 */
export function configFromObject(
  raw: Record<string, unknown>,
  env: ConfigSources['env'] = {},
  source?: string,
): Omit<LoadedConfig, 'file'> {
  const current = migrateLegacyKeys(raw)
  const input = current.instances === undefined ? { ...current, instances: [{ url: ollamaHostOrigin(env.OLLAMA_HOST) }] } : current
  const result = configSchema.safeParse(input, { error: describeIssue })
  if (!result.success) throw new ConfigError(result.error.issues.map(formatIssue), source)
  return { config: compileConfig(result.data), effective: result.data }
}

function readYaml(file: string, problems: string[]): unknown {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    problems.push(code === 'ENOENT' ? `${file}: no such file` : `${file}: cannot be read (${code ?? String(err)})`)
    return undefined
  }
  const doc = parseDocument(text)
  for (const error of doc.errors) {
    const pos = error.linePos?.[0]
    const message = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')
    problems.push(`${file}${pos ? `:${pos.line}:${pos.col}` : ''}: ${message}`)
  }
  if (doc.errors.length > 0) return undefined
  const value: unknown = doc.toJS()
  if (value === null || value === undefined) return {}
  if (typeof value !== 'object' || Array.isArray(value)) {
    problems.push(`${file}: must be a YAML mapping of settings, got ${Array.isArray(value) ? 'a list' : typeof value}`)
    return undefined
  }
  return value
}

/** Replaces `${VAR}` and `${VAR:-default}` in every string value; `$${` writes a literal `${`. */
function interpolate(value: unknown, env: ConfigSources['env'], path: (string | number)[], problems: string[]): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$(\$)?\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (whole, escaped, name: string, fallback) => {
      if (escaped) return whole.slice(1)
      const v = env[name]
      if (v !== undefined && v !== '') return v
      if (fallback !== undefined) return fallback as string
      problems.push(`${formatPath(path)} references \${${name}}, which is not set`)
      return ''
    })
  }
  if (Array.isArray(value)) return value.map((v, i) => interpolate(v, env, [...path, i], problems))
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = interpolate(v, env, [...path, k], problems)
    return out
  }
  return value
}

function applyOverrides(raw: Record<string, unknown>, o: ConfigFlags): void {
  if (o.listen) raw.listen = o.listen
  if (o.instances) {
    raw.instances = o.instances
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map((url) => ({ url }))
  }
  if (o.redis) raw.redis = { ...(asObject(raw.redis) ?? {}), url: o.redis }
  if (o.logLevel) raw.log = { ...(asObject(raw.log) ?? {}), level: o.logLevel }
}

function asObject(v: unknown): Record<string, unknown> | undefined {
  return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined
}

/**
 * The origin the official Ollama client would use for `OLLAMA_HOST` (envconfig.Host): scheme
 * defaults to http, host to 127.0.0.1, and the port to 11434 when no scheme is given.
 */
export function ollamaHostOrigin(value: string | undefined): string {
  const fallback = 'http://127.0.0.1:11434'
  const v = value?.trim()
  if (!v) return fallback
  const hasScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(v)
  const withScheme = hasScheme ? v : `http://${v}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    return v // reported by the schema as an invalid origin
  }
  if (!hasScheme && url.port === '') url.port = '11434'
  if (url.hostname === '') url.hostname = '127.0.0.1'
  return url.pathname === '/' ? url.origin : url.href
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = ''
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`
    else out += out === '' ? String(part) : `.${String(part)}`
  }
  return out === '' ? '(top level)' : out
}

function formatIssue(issue: z.core.$ZodIssue): string {
  // A secret in the wrong shape (a number, too short) is described, never repeated.
  const message = isSecretPath(issue.path) ? issue.message.replace(/,? got [\s\S]*$/, '') : issue.message
  return `${formatPath(issue.path)} ${message}`
}

const kindOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v)

/** Messages in the `path must be ...` style for the issues zod raises itself. */
function describeIssue(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required'
      return `must be ${article(issue.expected)}, got ${kindOf(issue.input)} ${JSON.stringify(issue.input)}`
    case 'unrecognized_keys':
      return `has unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`
    case 'invalid_value':
      return `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${JSON.stringify(issue.input)}`
    case 'invalid_union':
      return `has the wrong type, got ${kindOf(issue.input)} ${JSON.stringify(issue.input)}`
    case 'too_small':
      return `must be at least ${String(issue.minimum)}, got ${JSON.stringify(issue.input)}`
    case 'too_big':
      return `must be at most ${String(issue.maximum)}, got ${JSON.stringify(issue.input)}`
    default:
      return undefined
  }
}

function article(expected: string): string {
  const names: Record<string, string> = {
    string: 'a string',
    number: 'a number',
    int: 'a whole number',
    boolean: 'true or false',
    object: 'a mapping',
    array: 'a list',
  }
  return names[expected] ?? expected
}
