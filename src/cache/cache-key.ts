/**
 * Cache keys: SHA-256 over canonical JSON (object keys sorted, no whitespace) of everything in a
 * request that can change the answer. Fields are excluded by name, not picked: a field corral
 * does not know (a new Ollama option) is part of the key, which costs hits but never serves a
 * wrong answer.
 */
import { hash } from 'node:crypto'

/**
 * A namespace of answers: requests of different families never share a key. `/api/embeddings`
 * (float64, not normalised) and `/api/embed` (normalised float32) are different families, and
 * the `/v1` routes have their own since their defaults differ from Ollama's.
 */
export type KeyFamily = 'generate' | 'chat' | 'embed' | 'embeddings' | 'openai_chat' | 'openai_completions' | 'openai_embed'

/** Fields that only change the shape of the answer or a side effect, never its content. */
const SHAPE_ONLY: ReadonlySet<string> = new Set(['stream', 'keep_alive', 'stream_options', 'encoding_format'])

/** Canonical JSON: like JSON.stringify, with object keys sorted at every depth. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null'
  if (Array.isArray(value)) {
    let out = '['
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i])
    return out + ']'
  }
  const record = value as Record<string, unknown>
  const keys = Object.keys(record).sort()
  let out = '{'
  let first = true
  for (const k of keys) {
    const v = record[k]
    if (v === undefined) continue
    out += (first ? '' : ',') + JSON.stringify(k) + ':' + canonicalJson(v)
    first = false
  }
  return out + '}'
}

/**
 * The part of a key shared by every item of one request: family, model (resolved, with its
 * digest when discovery knows it), every output-affecting field except `omit` (the input
 * items of an embedding request, keyed one by one with {@link itemKey}) and the cache
 * `partition` of the caller (with auth on, `key:<name>`, `group:<cache_group>` or
 * `jwt:<subject>`; '' when shared), so tenants never find each other's entries.
 */
export function requestBasis(
  family: KeyFamily,
  model: string,
  digest: string | undefined,
  body: Readonly<Record<string, unknown>>,
  omit?: string,
  partition = '',
): string {
  const fields: Record<string, unknown> = {}
  for (const k in body) {
    if (k === 'model' || k === omit || SHAPE_ONLY.has(k)) continue
    fields[k] = body[k]
  }
  const basis = `${family}\n${model}\n${digest ?? ''}\n${canonicalJson(fields)}`
  // Canonical JSON holds no raw newline, so the partition line cannot be forged by a body; the
  // shared partition adds nothing, which keeps the keys of a cache without auth as they were.
  return partition === '' ? basis : `${basis}\n${partition}`
}

/** The key of a whole request (generations, and single-flight for embeddings). */
export function requestKey(basis: string): string {
  return hash('sha256', basis, 'hex')
}

/**
 * The key of one input of an embedding request, from the request's `requestKey(basis)`: a
 * fixed-length hex digest, so digest and item joined are unambiguous without escaping, and each
 * item hashes 64 characters plus itself instead of the whole basis (32 of them per batch).
 */
export function itemKey(basisKey: string, item: string): string {
  // One-shot hashing: no Hash object per item (the hit path of a single embedding is this plus a lookup).
  return hash('sha256', basisKey + item, 'hex')
}

const LAYERS = ['embedding', 'chunk', 'inference'] as const
const CHUNK_META = 'chunk-meta'

/**
 * The layout of stored keys: `<prefix><layer>:<model>:<sha256>` for answers and vectors, and
 * `<prefix>chunk-meta:<id>` for the chunk-metadata API, so a flush by layer or model is a
 * deletion by key prefix.
 *
 * Redis Cluster: keys carry no hash tag on purpose. Every command corral sends names one key
 * (GET, SET PX, UNLINK; a flush SCANs each master and unlinks key by key), so no two keys ever
 * need to share a slot, and untagged keys spread evenly over every master. A `{tag}` would pin a
 * whole layer or model to one master. `key_prefix` cannot contain braces; a model name with a
 * `{x}` in it would only pin that model's keys to one slot (still correct).
 */
export class KeySpace {
  readonly prefix: string

  constructor(prefix: string) {
    this.prefix = prefix
  }

  entry(layer: (typeof LAYERS)[number], model: string, hash: string): string {
    return `${this.prefix}${layer}:${model}:${hash}`
  }

  /** The cross-replica single-flight lock of an entry key: `<prefix>lock:<layer>:<model>:<sha256>`. */
  lock(entryKey: string): string {
    return `${this.prefix}lock:${entryKey.slice(this.prefix.length)}`
  }

  chunkMeta(id: string): string {
    return `${this.prefix}${CHUNK_META}:${id}`
  }

  /** The layer a key belongs to (chunk metadata counts as `chunk`). */
  layerOf(key: string): string {
    const end = key.indexOf(':', this.prefix.length)
    const layer = key.slice(this.prefix.length, end === -1 ? undefined : end)
    return layer === CHUNK_META ? 'chunk' : layer
  }

  /** Key prefixes covering one layer and/or one model (everything when neither is given). */
  prefixes(layer: (typeof LAYERS)[number] | undefined, model: string | undefined): string[] {
    const layers = layer === undefined ? LAYERS : [layer]
    if (model === undefined) {
      if (layer === undefined) return [this.prefix]
      return layer === 'chunk' ? [`${this.prefix}chunk:`, `${this.prefix}${CHUNK_META}:`] : [`${this.prefix}${layer}:`]
    }
    return layers.map((l) => `${this.prefix}${l}:${model}:`)
  }
}
