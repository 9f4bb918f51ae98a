/**
 * The faults a test scripts into the fake (see {@link Behaviour}): which request gets which,
 * in arrival order, and what each does to the exchange before the normal handler runs.
 */
import { STATUS_CODES } from 'node:http'
import { setTimeout as delay } from 'node:timers/promises'
import { SERVER_BUSY_ERROR, type Behaviour } from './fake-ollama-types.js'
import type { FakeExchange } from './fake-exchange.js'

export class FaultScript {
  readonly #scripts: Array<{ behaviour: Behaviour; path: string | undefined; times: number }> = []
  #default: Behaviour | undefined

  /** Queue a behaviour for the next `times` (default 1) requests, only those for `path` if given. */
  add(behaviour: Behaviour, opts: { path?: string; times?: number } = {}): void {
    this.#scripts.push({ behaviour, path: opts.path, times: opts.times ?? 1 })
  }

  clear(): void { this.#scripts.length = 0 }

  setDefault(b: Behaviour | undefined): void { this.#default = b }

  /**
   * The behaviour of a request that just arrived (scripts apply in arrival order). Background
   * probes take only scripts that name their path.
   */
  next(pathname: string, background: boolean): Behaviour | undefined {
    const i = this.#scripts.findIndex((s) => (s.path === undefined && !background) || s.path === pathname)
    const s = this.#scripts[i]
    if (s === undefined) return this.#default
    if (--s.times <= 0) this.#scripts.splice(i, 1)
    return s.behaviour
  }
}

/** Applies a behaviour; true when it has dealt with the exchange completely. */
export async function applyBehaviour(ex: FakeExchange, b: Behaviour): Promise<boolean> {
  switch (b.kind) {
    case 'refuse':
      ex.kill('reset')
      return true
    case 'hang':
      // Nothing to do: the socket stays open and res 'close' counts the client leaving.
      return true
    case 'status':
      ex.sendError(b.status, b.error ?? defaultErrorText(b.status))
      return true
    case 'slow':
      ex.tokenDelayMs = b.tokenDelayMs
      return false
    case 'die-after-chunks':
      ex.dieAfterChunks = b.chunks
      return false
    case 'error-after-chunks':
      ex.errorAfterChunks = { chunks: b.chunks, error: b.error ?? 'an error was encountered while running the model' }
      return false
    case 'fail-progress':
      ex.failProgress = { lines: b.lines, error: b.error ?? 'pull model manifest: file does not exist' }
      return false
    case 'delay-headers':
      await delay(b.ms, undefined, { signal: ex.signal })
      return false
  }
}

function defaultErrorText(status: number): string {
  if (status === 503) return SERVER_BUSY_ERROR
  if (status === 499) return 'request canceled'
  return (STATUS_CODES[status] ?? 'error').toLowerCase()
}
