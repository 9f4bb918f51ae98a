/**
 * `corral serve --watch`: calls back when the config file's content changes.
 *
 * The directory is watched, not the file: editors save by writing a new file and renaming it
 * over the old one (the file's inode changes, a watch on it would go quiet), and Kubernetes
 * swaps a ConfigMap by renaming a `..data` symlink next to the file (no event names the file at
 * all). Every event in the directory starts (or restarts) a short debounce; when it fires the
 * file is read and compared with what was last seen, so a burst of events, a touch or a change
 * to another file in the directory costs one read and no reload. A file that is missing when
 * the debounce fires (moved away for good) is reported once through `onChange`, whose reload
 * logs it. One watcher and at most one timer: bounded whatever the file system does.
 */
import { watch, readFileSync, type FSWatcher } from 'node:fs'
import { createHash } from 'node:crypto'
import { dirname } from 'node:path'

export interface ConfigWatcherOptions {
  /** Quiet time after the last event before the file is read, in ms. Default 200. */
  debounceMs?: number
  /** Called when the watch itself fails (the directory was removed, too many watches). */
  onError?: (err: Error) => void
}

const DEFAULT_DEBOUNCE_MS = 200
const MISSING = 'missing'

export class ConfigWatcher {
  readonly #file: string
  readonly #onChange: () => void
  readonly #debounceMs: number
  readonly #watcher: FSWatcher
  #timer: NodeJS.Timeout | undefined
  #seen: string
  #closed = false

  constructor(file: string, onChange: () => void, options: ConfigWatcherOptions = {}) {
    this.#file = file
    this.#onChange = onChange
    this.#debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS
    this.#seen = this.#fingerprint()
    // persistent: false: the watch alone does not keep the process alive.
    this.#watcher = watch(dirname(file), { persistent: false }, () => this.#schedule())
    this.#watcher.on('error', (err) => options.onError?.(err))
  }

  /** Stops watching. Idempotent. */
  close(): void {
    this.#closed = true
    clearTimeout(this.#timer)
    this.#watcher.close()
  }

  #schedule(): void {
    if (this.#closed) return
    clearTimeout(this.#timer)
    this.#timer = setTimeout(() => this.#check(), this.#debounceMs)
    this.#timer.unref()
  }

  #check(): void {
    this.#timer = undefined
    if (this.#closed) return
    const now = this.#fingerprint()
    if (now === this.#seen) return
    this.#seen = now
    this.#onChange()
  }

  /** A hash of the file's content, or `missing`. */
  #fingerprint(): string {
    try {
      return createHash('sha256').update(readFileSync(this.#file)).digest('hex')
    } catch {
      return MISSING
    }
  }
}
