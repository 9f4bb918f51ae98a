/**
 * Who a request comes from: the peer's address, or, when the peer is a trusted proxy
 * (`server.trust_proxy`), the address it reports in X-Forwarded-For. Per-client limits key on it.
 */
import type { IncomingMessage } from 'node:http'
import { isIP } from 'node:net'
import { AddressSet, plainAddress } from './cidr.js'

export class ClientAddresses {
  /** undefined: nobody is trusted; 'all': everybody is. */
  #trusted: AddressSet | 'all' | undefined

  constructor(trustProxy: boolean | readonly string[]) {
    this.#trusted = trustedSet(trustProxy)
  }

  /** A new `server.trust_proxy` (hot reload), for requests from now on. */
  reconfigure(trustProxy: boolean | readonly string[]): void {
    this.#trusted = trustedSet(trustProxy)
  }

  /** Whether `address` is a proxy whose X-Forwarded-* headers are believed. */
  trusts(address: string | undefined): boolean {
    const trusted = this.#trusted
    if (trusted === undefined || address === undefined) return false
    return trusted === 'all' || trusted.has(address)
  }

  /** The peer's address as corral sees it (IPv4-mapped IPv6 written as IPv4); `unknown` for a closed socket. */
  peerOf(req: IncomingMessage): string {
    const address = req.socket.remoteAddress
    return address === undefined ? 'unknown' : plainAddress(address)
  }

  /**
   * The client's address. Behind trusted proxies: walking X-Forwarded-For from the right, the
   * first address that is not a trusted proxy (with `trust_proxy: true`, the left-most one); a
   * malformed entry stops the walk at the last address known good.
   */
  clientOf(req: IncomingMessage): string {
    const peer = this.peerOf(req)
    if (!this.trusts(peer)) return peer
    const header = req.headers['x-forwarded-for']
    if (header === undefined) return peer
    const hops = (Array.isArray(header) ? header.join(',') : header).split(',')
    let client = peer
    for (let i = hops.length - 1; i >= 0; i--) {
      const hop = hops[i]!.trim()
      if (isIP(hop) === 0) break
      client = plainAddress(hop)
      if (!this.trusts(client)) break
    }
    return client
  }
}

function trustedSet(trustProxy: boolean | readonly string[]): AddressSet | 'all' | undefined {
  return trustProxy === true ? 'all' : trustProxy === false ? undefined : new AddressSet(trustProxy)
}
