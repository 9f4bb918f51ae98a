/**
 * Merging the model lists of several instances into the one list a single Ollama would give:
 * `/api/tags` (local models), `/api/ps` (loaded models) and OpenAI's `/v1/models`. Pure functions:
 * the fan-out that collects the lists lives in `cluster-views.ts`.
 */
import { canonicalModel } from '../shared/model-name.js'

/** Which list is merged: they differ in the field that names a model and the one that orders them. */
export type ModelListKind = 'tags' | 'ps' | 'openai_models'

interface ListShape {
  /** Field naming the model. */
  readonly nameField: string
  /** Field whose newest value wins among duplicates, and orders the list (newest first). */
  readonly timeOf: (entry: Record<string, unknown>) => number
}

const isoTime =
  (field: string) =>
  (entry: Record<string, unknown>): number => {
    const value = entry[field]
    const ms = typeof value === 'string' ? Date.parse(value) : NaN
    return Number.isNaN(ms) ? -Infinity : ms
  }

const SHAPES: Readonly<Record<ModelListKind, ListShape>> = {
  // Ollama's ListHandler sorts by modified_at, newest first.
  tags: { nameField: 'name', timeOf: isoTime('modified_at') },
  // Ollama's PsHandler sorts by expires_at, the longest remaining first.
  ps: { nameField: 'name', timeOf: isoTime('expires_at') },
  // Ollama builds /v1/models from the tags list: `created` is modified_at in Unix seconds.
  openai_models: {
    nameField: 'id',
    timeOf: (entry) => (typeof entry.created === 'number' ? entry.created : -Infinity),
  },
}

/**
 * The key under which two names denote the same model: a missing tag means `:latest` (so `llama3`
 * and `llama3:latest` are one model), and Ollama matches names case-insensitively.
 */
export function modelKey(name: string): string {
  return canonicalModel(name).toLowerCase()
}

/**
 * One list out of the lists of several instances (in candidate order): duplicates by
 * {@link modelKey} are dropped, keeping the newest entry (ties: the first instance's), and the
 * result is ordered newest first, as Ollama orders its own. Entries that are not objects with a
 * string name are dropped. The entries themselves are passed through unchanged.
 */
export function mergeModelLists(kind: ModelListKind, lists: readonly (readonly unknown[])[]): Record<string, unknown>[] {
  const { nameField, timeOf } = SHAPES[kind]
  const chosen = new Map<string, { entry: Record<string, unknown>; time: number }>()
  for (const list of lists) {
    for (const item of list) {
      if (item === null || typeof item !== 'object' || Array.isArray(item)) continue
      const entry = item as Record<string, unknown>
      const name = entry[nameField]
      if (typeof name !== 'string') continue
      const key = modelKey(name)
      const time = timeOf(entry)
      const seen = chosen.get(key)
      if (seen === undefined || time > seen.time) chosen.set(key, { entry, time })
    }
  }
  // Array.prototype.sort is stable: equal times keep the order in which they were first seen.
  return [...chosen.values()].sort((a, b) => b.time - a.time).map((c) => c.entry)
}

/** The model array in a list answer (`models` for Ollama's, `data` for OpenAI's). */
export function listOf(kind: ModelListKind, text: string): unknown[] | undefined {
  try {
    const value = JSON.parse(text) as unknown
    if (value === null || typeof value !== 'object') return undefined
    const list = (value as Record<string, unknown>)[kind === 'openai_models' ? 'data' : 'models']
    // Ollama encodes an empty slice as [] but a nil one as null.
    if (list === null) return []
    return Array.isArray(list) ? list : undefined
  } catch {
    return undefined
  }
}
