/**
 * IP addresses and CIDR ranges as written in `server.trust_proxy`, checked with node's BlockList
 * (which matches IPv4 against IPv4-mapped IPv6 too).
 */
import { BlockList, isIP } from 'node:net'

export interface Cidr {
  readonly address: string
  readonly prefix: number
  readonly family: 'ipv4' | 'ipv6'
}

/** `10.0.0.0/8`, `fd00::/8` or a bare address (a /32 or /128); undefined when malformed. */
export function parseCidr(value: string): Cidr | undefined {
  const slash = value.indexOf('/')
  const address = (slash === -1 ? value : value.slice(0, slash)).trim()
  const version = isIP(address)
  if (version === 0) return undefined
  const max = version === 4 ? 32 : 128
  const prefixText = slash === -1 ? String(max) : value.slice(slash + 1).trim()
  if (!/^\d{1,3}$/.test(prefixText)) return undefined
  const prefix = Number(prefixText)
  if (prefix > max) return undefined
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' }
}

/** `::ffff:10.0.0.1` (how a dual-stack socket reports an IPv4 peer) -> `10.0.0.1`. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address
}

/** A set of CIDR ranges that answers "is this address in it?". */
export class AddressSet {
  readonly #list = new BlockList()

  constructor(cidrs: readonly string[]) {
    for (const text of cidrs) {
      const cidr = parseCidr(text)
      if (cidr !== undefined) this.#list.addSubnet(cidr.address, cidr.prefix, cidr.family)
    }
  }

  has(address: string): boolean {
    const plain = plainAddress(address)
    const version = isIP(plain)
    return version !== 0 && this.#list.check(plain, version === 4 ? 'ipv4' : 'ipv6')
  }
}
