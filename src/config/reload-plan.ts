/**
 * What a configuration reload changes: the configuration to run next, a line per change for the
 * log and the admin answer, and the settings that only a restart applies.
 *
 * Settings bound to something built once at start-up cannot change in a running process: the
 * listening sockets (`listen`, `metrics.listen`), whether metrics exist at all, the cache store
 * (`redis.*`, `cache.memory.max_size`, `cache.max_entry_size`, which the memory store is sized
 * with) and `server.max_header_size` (an option of Node's HTTP parser). A reload that changes
 * them still applies everything else and keeps their running values; they are reported as
 * needing a restart every time until the process restarts or the file is changed back.
 */
import type { Config, InstanceConfig } from './config.js'

export interface ReloadPlan {
  /** The configuration to run: the new one, with the settings that need a restart kept as they run. */
  readonly applied: Config
  /** One line per change, e.g. `cache.layers.inference.ttlMs: 86400000 -> 3600000`, `instances.gpu3: added (http://gpu3:11434)`. */
  readonly changes: readonly string[]
  /** YAML keys whose new value waits for a restart. */
  readonly restartRequired: readonly string[]
}

/** Settings that need a restart: their YAML key and how to read them from a Config. */
const RESTART_ONLY: readonly (readonly [string, (c: Config) => unknown])[] = [
  ['listen', (c) => c.listen],
  ['metrics.enabled', (c) => c.metrics.enabled],
  ['metrics.listen', (c) => c.metrics.listen],
  ['redis', (c) => c.redis],
  ['cache.memory.max_size', (c) => c.cache.memoryMaxBytes],
  ['cache.max_entry_size', (c) => c.cache.maxEntryBytes],
  ['server.max_header_size', (c) => c.server.maxHeaderBytes],
]

/** Keys whose values never go to a log or an answer (credentials, API keys, signing secrets). */
const SECRET = /password|secret|token|credential|^(api_?)?keys?$|^jwt/i

/** Compares the running configuration `prev` with a freshly loaded `next`. Pure. */
export function planReload(prev: Config, next: Config): ReloadPlan {
  const restartRequired = RESTART_ONLY.filter(([, read]) => !same(read(prev), read(next))).map(([key]) => key)
  const applied = freeze({
    ...next,
    listen: prev.listen,
    metrics: prev.metrics,
    redis: prev.redis,
    cache: freeze({ ...next.cache, memoryMaxBytes: prev.cache.memoryMaxBytes, maxEntryBytes: prev.cache.maxEntryBytes }),
    server: freeze({ ...next.server, maxHeaderBytes: prev.server.maxHeaderBytes }),
  })
  const changes = [...instanceChanges(prev.instances, applied.instances)]
  const { instances: _a, ...prevRest } = prev
  const { instances: _b, ...nextRest } = applied
  leafChanges(prevRest, nextRest, '', changes)
  return { applied, changes, restartRequired }
}

/** Instances by name (their identity): added, removed, moved to another url, re-weighted or re-capped. */
function instanceChanges(prev: readonly InstanceConfig[], next: readonly InstanceConfig[]): string[] {
  const out: string[] = []
  const before = new Map(prev.map((i) => [i.name, i]))
  for (const i of next) {
    const old = before.get(i.name)
    before.delete(i.name)
    if (old === undefined) {
      out.push(`instances.${i.name}: added (${i.url})`)
      continue
    }
    if (old.url !== i.url) out.push(`instances.${i.name}.url: ${old.url} -> ${i.url}`)
    if (old.weight !== i.weight) out.push(`instances.${i.name}.weight: ${old.weight} -> ${i.weight}`)
    if (old.maxConcurrency !== i.maxConcurrency) out.push(`instances.${i.name}.maxConcurrency: ${old.maxConcurrency ?? 'learned'} -> ${i.maxConcurrency ?? 'learned'}`)
  }
  for (const gone of before.values()) out.push(`instances.${gone.name}: removed (${gone.url})`)
  return out
}

/** Appends `path: old -> new` for every leaf that differs (arrays and absent objects count as leaves). */
function leafChanges(a: unknown, b: unknown, path: string, out: string[]): void {
  if (isPlainObject(a) && isPlainObject(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      leafChanges(a[key], b[key], path === '' ? key : `${path}.${key}`, out)
    }
    return
  }
  if (same(a, b)) return
  out.push(SECRET.test(path.slice(path.lastIndexOf('.') + 1)) ? `${path}: changed` : `${path}: ${show(a)} -> ${show(b)}`)
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v)
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b)
}

function show(v: unknown): string {
  return v === undefined ? 'none' : JSON.stringify(v)
}

function freeze<T extends object>(value: T): Readonly<T> {
  return Object.freeze(value)
}
