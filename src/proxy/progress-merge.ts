/**
 * Merges the progress streams of one pull (or create) running on several instances into the one
 * progress sequence a single Ollama would stream.
 */

/** Progress lines per layer are written at most this often (the last state of a layer always is). */
export const PROGRESS_INTERVAL_MS = 100

interface Layer {
  status: string
  /** Per instance, by position; never goes back. */
  readonly completed: number[]
  /** The layer's size: the largest total any instance reported for it (they pull the same bytes). */
  size: number
  lastWrittenAt: number
  /** A state not written yet (held back by the interval). */
  pending: boolean
}

export interface ProgressMergeOptions {
  /** Number of instances whose progress is merged; they are numbered 0..instances-1. */
  instances: number
  /** Receives each merged line, newline included. */
  write: (line: string) => void
  /** Clock in ms (injected for tests). Default `performance.now`. */
  now?: () => number
  /** Default {@link PROGRESS_INTERVAL_MS}. */
  intervalMs?: number
}

/**
 * Status lines without a digest (`pulling manifest`, `verifying sha256 digest`, ...) are written
 * once, the first time any instance reports them. Lines with a digest (one layer's download) are
 * written with `completed` summed over the instances and `total` the layer's size times the
 * instances from the first report on (a total that grew as instances reported would make the
 * client's percentage go back), at most once per layer per
 * interval, plus whenever an instance finishes the layer, plus by {@link flush}. The terminal
 * `success` or `error` line is the caller's: it knows how every instance ended.
 */
export class ProgressMerge {
  readonly #instances: number
  readonly #write: (line: string) => void
  readonly #now: () => number
  readonly #intervalMs: number
  readonly #statuses = new Set<string>()
  readonly #layers = new Map<string, Layer>()

  constructor(options: ProgressMergeOptions) {
    this.#instances = options.instances
    this.#write = options.write
    this.#now = options.now ?? (() => performance.now())
    this.#intervalMs = options.intervalMs ?? PROGRESS_INTERVAL_MS
  }

  /** One progress line (neither success nor error) from instance `index`. */
  add(index: number, line: Record<string, unknown>): void {
    const { digest, status } = line
    if (typeof digest === 'string' && digest !== '') {
      this.#progress(index, digest, line)
      return
    }
    if (typeof status !== 'string' || this.#statuses.has(status)) return
    this.#statuses.add(status)
    // Layers first: a client reading the stream sees their last state before what follows them.
    this.flush()
    this.#write(JSON.stringify(line) + '\n')
  }

  /** Writes the layers whose latest merged state was held back. */
  flush(): void {
    for (const [digest, layer] of this.#layers) if (layer.pending) this.#writeLayer(digest, layer)
  }

  #progress(index: number, digest: string, line: Record<string, unknown>): void {
    let layer = this.#layers.get(digest)
    if (layer === undefined) {
      layer = {
        status: '',
        completed: new Array<number>(this.#instances).fill(0),
        size: 0,
        lastWrittenAt: -Infinity,
        pending: false,
      }
      this.#layers.set(digest, layer)
    }
    if (typeof line.status === 'string') layer.status = line.status
    const total = typeof line.total === 'number' ? line.total : 0
    // Ollama omits `completed` while it is 0 (omitempty).
    const completed = typeof line.completed === 'number' ? line.completed : 0
    if (total > layer.size) layer.size = total
    if (completed > (layer.completed[index] ?? 0)) layer.completed[index] = completed
    const finished = total > 0 && completed >= total
    if (finished || this.#now() - layer.lastWrittenAt >= this.#intervalMs) this.#writeLayer(digest, layer)
    else layer.pending = true
  }

  #writeLayer(digest: string, layer: Layer): void {
    // One total from the first report on: every instance pulls the same layer, so the merged
    // total is its size times the instances, and the client's percentage only grows.
    const total = layer.size * this.#instances
    let completed = 0
    for (let i = 0; i < this.#instances; i++) completed += Math.min(layer.completed[i] ?? 0, layer.size)
    // Field order and omitempty as in Ollama's api.ProgressResponse.
    const line: Record<string, unknown> = { status: layer.status, digest }
    if (total > 0) line.total = total
    if (completed > 0) line.completed = completed
    layer.lastWrittenAt = this.#now()
    layer.pending = false
    this.#write(JSON.stringify(line) + '\n')
  }
}
