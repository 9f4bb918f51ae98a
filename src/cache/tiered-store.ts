import type { CacheEntry, CacheStore, LayerUsage, RemoteHealth } from './cache-store.js'
import type { MemoryStore } from './memory-store.js'

/**
 * A small memory tier in front of a remote store (Redis): hot entries are answered from process
 * memory, with their decoded views, without a round trip. Writes go to both; entries read from
 * the remote are kept locally for at most `localTtlMs`, since other replicas may flush or
 * replace them in the meantime.
 */
export class TieredStore implements CacheStore {
  readonly kind: 'memory' | 'redis'
  readonly #local: MemoryStore
  readonly #remote: CacheStore
  readonly #localTtlMs: number

  constructor(local: MemoryStore, remote: CacheStore, localTtlMs: number) {
    this.kind = remote.kind
    this.#local = local
    this.#remote = remote
    this.#localTtlMs = localTtlMs
  }

  get(key: string): CacheEntry | undefined | Promise<CacheEntry | undefined> {
    return this.#local.get(key) ?? this.#fromRemote(key)
  }

  async #fromRemote(key: string): Promise<CacheEntry | undefined> {
    const entry = await this.#remote.get(key)
    if (entry === undefined) return undefined
    return this.#local.put(key, entry.value, this.#localTtlMs) ?? entry
  }

  set(key: string, value: Buffer, ttlMs: number, view?: unknown): Promise<boolean> {
    this.#local.put(key, value, Math.min(ttlMs, this.#localTtlMs), view)
    return this.#remote.set(key, value, ttlMs)
  }

  async delete(key: string): Promise<boolean> {
    const local = await this.#local.delete(key)
    return (await this.#remote.delete(key)) || local
  }

  async flush(prefixes: readonly string[]): Promise<number> {
    const local = await this.#local.flush(prefixes)
    return Math.max(local, await this.#remote.flush(prefixes))
  }

  usage(layer: string): LayerUsage {
    return this.#local.usage(layer)
  }

  health(): RemoteHealth | undefined {
    return this.#remote.health()
  }

  claim(lockKey: string, ttlMs: number): Promise<boolean> {
    return this.#remote.claim?.(lockKey, ttlMs) ?? Promise.resolve(true)
  }

  held(lockKey: string): Promise<boolean> {
    return this.#remote.held?.(lockKey) ?? Promise.resolve(false)
  }

  release(lockKey: string): Promise<void> {
    return this.#remote.release?.(lockKey) ?? Promise.resolve()
  }

  whenUp(timeoutMs?: number): Promise<void> {
    return this.#remote.whenUp?.(timeoutMs) ?? Promise.resolve()
  }

  async close(): Promise<void> {
    await Promise.all([this.#local.close(), this.#remote.close()])
  }
}
