/**
 * The configured API keys, held only as SHA-256 hashes. A presented key is hashed and compared
 * against every stored hash with `timingSafeEqual`, without stopping at a match, so the time a
 * lookup takes says nothing about which key (or how much of one) matched.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { ApiKeyConfig } from '../config/auth-config.js'
import type { Principal } from '../http/principal.js'

interface StoredKey {
  readonly hash: Buffer
  readonly principal: Principal
}

export class KeyStore {
  readonly #keys: readonly StoredKey[]

  constructor(keys: readonly ApiKeyConfig[]) {
    this.#keys = keys.map((k) => ({
      hash: Buffer.from(k.sha256, 'hex'),
      principal: Object.freeze({
        name: k.name,
        label: k.name,
        admin: k.admin,
        limits: k.limits,
        cachePartition: k.cacheGroup !== undefined ? `group:${k.cacheGroup}` : `key:${k.name}`,
        priority: k.priority,
        weight: k.weight,
      }),
    }))
  }

  get size(): number {
    return this.#keys.length
  }

  /** The principal of the key `token` is, or undefined. */
  lookup(token: string): Principal | undefined {
    const presented = createHash('sha256').update(token, 'utf8').digest()
    let found: Principal | undefined
    for (const key of this.#keys) {
      // Every hash is compared, even after a match: constant work per lookup.
      if (timingSafeEqual(presented, key.hash) && found === undefined) found = key.principal
    }
    return found
  }
}
