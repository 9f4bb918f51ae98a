/**
 * What the generation and embedding caches share: the current settings, the store and its key
 * space, the stats, the writer, and how a cache answer is marked and sent.
 */
import type { OutgoingHttpHeaders } from 'node:http'
import { performance } from 'node:perf_hooks'
import type { CacheConfig } from '../config/config.js'
import type { Exchange } from '../http/exchange.js'
import { reply } from '../http/reply.js'
import type { KeySpace } from './cache-key.js'
import type { CacheStats } from './cache-stats.js'
import type { CacheStore } from './cache-store.js'
import type { EntryWriter } from './entry-writer.js'

/** `X-Corral-Cache` values. */
export type CacheStatus = 'hit' | 'miss' | 'bypass' | 'coalesced'

export class CacheContext {
  /** Replaced by a reload (see `OllamaCache.reconfigure`). */
  config: CacheConfig
  readonly store: CacheStore
  readonly keys: KeySpace
  readonly stats: CacheStats
  readonly writer: EntryWriter

  constructor(config: CacheConfig, store: CacheStore, keys: KeySpace, stats: CacheStats, writer: EntryWriter) {
    this.config = config
    this.store = store
    this.keys = keys
    this.stats = stats
    this.writer = writer
  }

  /** The caller's cache partition (entry keys and flight keys derive from it); '' when keys share. */
  partitionOf(ex: Exchange): string {
    return this.config.shareAcrossKeys ? '' : ex.cachePartition
  }

  mark(ex: Exchange, status: CacheStatus): void {
    ex.cache = status
    if (this.config.responseHeader) ex.res.setHeader('x-corral-cache', status)
  }

  headers(ex: Exchange, type: string, status: CacheStatus): OutgoingHttpHeaders {
    ex.cache = status
    const headers: OutgoingHttpHeaders = { 'content-type': type, 'x-request-id': ex.id }
    if (this.config.responseHeader) headers['x-corral-cache'] = status
    return headers
  }

  /** A whole answer: headers and body leave together. */
  send(ex: Exchange, code: number, type: string, body: string | Buffer, status: CacheStatus): void {
    ex.firstByteAt = performance.now()
    reply(ex.res, code, this.headers(ex, type, status), body)
  }
}

/** Waits for `promise`, or less if the client goes away first. */
export function untilClientGone(ex: Exchange, promise: Promise<void>): Promise<void> {
  if (ex.clientGone) return Promise.resolve()
  return new Promise((resolve) => {
    const gone = (): void => resolve()
    ex.res.once('close', gone)
    void promise.then(() => {
      ex.res.off('close', gone)
      resolve()
    })
  })
}
