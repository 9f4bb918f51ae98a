import type { IncomingMessage } from 'node:http'
import t from 'tap'
import { ClientAddresses } from '../../src/limits/client-address.js'
import { ClientLimiter } from '../../src/limits/client-limiter.js'
import { parseCidr } from '../../src/limits/cidr.js'

/** Just what ClientAddresses reads of a request. */
const req = (peer: string, xff?: string): IncomingMessage =>
  ({ socket: { remoteAddress: peer }, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } }) as unknown as IncomingMessage

t.test('trust_proxy false: the peer, whatever X-Forwarded-For says', async (t) => {
  const a = new ClientAddresses(false)
  t.equal(a.clientOf(req('10.0.0.9', '6.6.6.6')), '10.0.0.9')
  t.equal(a.clientOf(req('::ffff:10.0.0.9')), '10.0.0.9', 'IPv4-mapped IPv6 is written as IPv4')
  t.equal(a.trusts('10.0.0.9'), false)
})

t.test('trust_proxy list: the right-most X-Forwarded-For address that is not a trusted proxy', async (t) => {
  const a = new ClientAddresses(['10.0.0.0/8', '::1'])
  t.equal(a.clientOf(req('10.0.0.2', '1.2.3.4, 10.0.0.7')), '1.2.3.4')
  t.equal(a.clientOf(req('10.0.0.2', '6.6.6.6, 1.2.3.4')), '1.2.3.4', 'what the client itself claims further left is ignored')
  t.equal(a.clientOf(req('::ffff:10.0.0.2', '1.2.3.4')), '1.2.3.4')
  t.equal(a.clientOf(req('::1', '1.2.3.4')), '1.2.3.4')
  t.equal(a.clientOf(req('192.168.1.1', '1.2.3.4')), '192.168.1.1', 'an untrusted peer is the client')
  t.equal(a.clientOf(req('10.0.0.2', 'garbage, 10.0.0.3')), '10.0.0.3', 'a malformed entry stops the walk')
  t.equal(a.clientOf(req('10.0.0.2')), '10.0.0.2')
})

t.test('trust_proxy true: every peer is trusted, the left-most address is the client', async (t) => {
  const a = new ClientAddresses(true)
  t.equal(a.clientOf(req('192.168.1.1', '1.2.3.4, 5.6.7.8')), '1.2.3.4')
})

t.test('CIDRs and bare addresses parse; malformed ones do not', async (t) => {
  t.same(parseCidr('10.0.0.0/8'), { address: '10.0.0.0', prefix: 8, family: 'ipv4' })
  t.same(parseCidr('fd00::/8'), { address: 'fd00::', prefix: 8, family: 'ipv6' })
  t.same(parseCidr('127.0.0.1'), { address: '127.0.0.1', prefix: 32, family: 'ipv4' })
  for (const bad of ['10.0.0.0/33', '10.0.0/8', 'host.example', '::/129', '1.2.3.4/x', '']) t.equal(parseCidr(bad), undefined, bad)
})

t.test('the per-client limiter counts per address and gives every slot back', async (t) => {
  const l = new ClientLimiter(2)
  t.ok(l.tryAcquire('a'))
  t.ok(l.tryAcquire('a'))
  t.notOk(l.tryAcquire('a'), 'a third is refused')
  t.ok(l.tryAcquire('b'), 'another client is not')
  t.equal(l.inFlight, 3)
  l.release('a')
  t.ok(l.tryAcquire('a'))
  l.release('a')
  l.release('a')
  l.release('b')
  t.equal(l.inFlight, 0)
  t.equal(l.clients, 0, 'no entry is left behind')
  l.release('never')
  t.equal(l.inFlight, 0, 'a stray release changes nothing')
})
