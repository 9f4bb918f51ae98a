/**
 * The fake's models: what is "on disk" (/api/tags), what is loaded (/api/ps) and the blobs
 * uploaded, with Ollama's naming rules (implied `library/`, `:latest`, case-insensitive lookup).
 */
import { sha256 } from './deterministic-answers.js'
import type { FakeModel } from './fake-ollama-types.js'

/** Ollama's default keep_alive: a model stays loaded 5 minutes after its last request. */
const DEFAULT_KEEP_ALIVE_MS = 5 * 60_000

/** A model with every default filled in. */
export interface ModelEntry {
  name: string
  digest: string
  family: string
  parameterSize: string
  quantization: string
  embedding: boolean
  dims: number
  size: number
  modifiedAt: string
}

export class ModelCatalog {
  readonly models = new Map<string, ModelEntry>()
  /** Loaded model key -> expiry (epoch ms). */
  readonly loaded = new Map<string, number>()
  readonly blobs = new Set<string>()

  constructor(models: readonly FakeModel[], loaded: readonly string[]) {
    // The models "on disk" at start were pulled one second apart, in the order given, so
    // /api/tags (newest first, as Ollama sorts it) lists them in that order, never by the
    // accident of two timestamps falling in the same millisecond.
    const startedAt = Date.now()
    models.forEach((m, i) => {
      const entry = modelEntry(m)
      if (m.modifiedAt === undefined) entry.modifiedAt = new Date(startedAt - i * 1000).toISOString()
      this.models.set(modelKey(entry.name), entry)
    })
    for (const name of loaded) this.loaded.set(modelKey(name), Date.now() + DEFAULT_KEEP_ALIVE_MS)
  }

  find(name: string): ModelEntry | undefined { return this.models.get(modelKey(name)) }

  /** Adds or replaces a model, under its canonical name. */
  put(entry: ModelEntry): void { this.models.set(modelKey(entry.name), entry) }

  remove(name: string): void {
    this.models.delete(modelKey(name))
    this.loaded.delete(modelKey(name))
  }

  /** Marks a model loaded for `keep_alive` (negative: forever). */
  load(m: ModelEntry, keepAlive: unknown): void {
    const ms = keepAliveMs(keepAlive)
    this.loaded.set(modelKey(m.name), ms < 0 ? Date.parse('2318-01-01T00:00:00Z') : Date.now() + ms)
  }

  unload(m: ModelEntry): void { this.loaded.delete(modelKey(m.name)) }
}

/** Ollama's model name rules: `library/` and the default registry are implied, `:latest` is the default tag. */
export function canonicalName(name: string): string {
  let n = name.trim().replace(/^registry\.ollama\.ai\//i, '').replace(/^library\//i, '')
  if (!n.slice(n.lastIndexOf('/') + 1).includes(':')) n += ':latest'
  return n
}

/** Ollama matches names case-insensitively (getExistingName). */
function modelKey(name: string): string {
  return canonicalName(name).toLowerCase()
}

export function parameterCount(size: string): number {
  const match = /^([\d.]+)\s*([KMBT]?)/i.exec(size)
  if (match === null) return 1e9
  const scale = { '': 1, K: 1e3, M: 1e6, B: 1e9, T: 1e12 }[(match[2] ?? '').toUpperCase()] ?? 1
  return Math.round(Number(match[1]) * scale)
}

export function modelEntry(m: FakeModel): ModelEntry {
  const name = canonicalName(m.name)
  const embedding = m.embedding ?? false
  const parameterSize = m.parameterSize ?? (embedding ? '137M' : '3.2B')
  const digest = m.digest?.replace(/^sha256:/, '') ?? sha256(name)
  // F16 weights for embedding models, ~4.8 bits per weight for Q4_K_M; plus a stable per-digest jitter.
  const size = Math.round(parameterCount(parameterSize) * (embedding ? 2 : 0.6)) + (parseInt(digest.slice(0, 4), 16) || 0)
  return {
    name, digest, embedding, parameterSize, size,
    family: m.family ?? (embedding ? 'nomic-bert' : 'llama'),
    quantization: embedding ? 'F16' : 'Q4_K_M',
    dims: m.dims ?? 768,
    modifiedAt: m.modifiedAt ?? new Date().toISOString(),
  }
}

export function details(m: ModelEntry): object {
  return {
    parent_model: '', format: 'gguf', family: m.family, families: [m.family],
    parameter_size: m.parameterSize, quantization_level: m.quantization,
  }
}

/** openai.Model: library models are owned by `library`. */
export function openaiModel(m: ModelEntry, id: string): object {
  return { id, object: 'model', created: Math.floor(Date.parse(m.modifiedAt) / 1000), owned_by: 'library' }
}

/** The layers a manifest would list: weights, template, params, license. */
export function layers(m: ModelEntry): Array<{ digest: string; size: number }> {
  return [['model', m.size], ['template', 1429], ['params', 96], ['license', 7711]].map(([kind, size]) => ({
    digest: `sha256:${sha256(`${m.digest}/${kind}`)}`, size: Number(size),
  }))
}

export function isDigest(d: string): boolean {
  return /^sha256[:-][0-9a-f]{64}$/.test(d)
}

export function normalDigest(d: string): string {
  return d.replace(/^sha256-/, 'sha256:')
}

/** keep_alive as Ollama reads it: a number of seconds or a Go duration string; negative means forever. */
export function keepAliveMs(v: unknown): number {
  if (typeof v === 'number') return v * 1000
  if (typeof v !== 'string' || v.trim() === '') return DEFAULT_KEEP_ALIVE_MS
  if (/^-?[\d.]+$/.test(v.trim())) return Number(v) * 1000
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 }
  let total = 0
  for (const [, n, unit] of v.matchAll(/(-?[\d.]+)(ns|us|µs|ms|s|m|h)/g)) total += Number(n) * (units[unit ?? 's'] ?? 1000)
  return total
}
