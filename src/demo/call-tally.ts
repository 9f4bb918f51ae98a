/**
 * What reached the fleet, as the cache benchmark counts it: model calls, distinct calls (the
 * request minus the fields that only change the wire shape) and embedding inputs. A caching proxy
 * in front is ideal when every distinct call reaches the fleet once.
 */
import type { RecordedRequest } from './fake-ollama.js'
import { isRecord } from './json-values.js'

export interface CallCounts {
  calls: number
  distinct: number
  inputs: number
}

export class CallTally {
  #calls = 0
  #inputs = 0
  readonly #distinct = new Set<string>()

  /** Counts one request (health checks and model lists are not calls). */
  add(request: RecordedRequest): void {
    if (request.method !== 'POST' || !isRecord(request.body)) return
    this.#calls++
    const identity: Record<string, unknown> = { ...request.body }
    delete identity.stream
    delete identity.keep_alive
    this.#distinct.add(`${request.path}\n${JSON.stringify(identity)}`)
    const path = request.path
    if (path === '/api/embed' || path === '/v1/embeddings') {
      this.#inputs += Array.isArray(request.body.input) ? request.body.input.length : 1
    } else if (path === '/api/embeddings') {
      this.#inputs++
    }
  }

  counts(): CallCounts {
    return { calls: this.#calls, distinct: this.#distinct.size, inputs: this.#inputs }
  }
}
