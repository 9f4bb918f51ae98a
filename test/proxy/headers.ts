import t from 'tap'
import { acceptedRequestId, clientResponseHeaders, newRequestId, upstreamRequestHeaders as flat } from '../../src/proxy/headers.js'

/** The flat header list as an object, for comparing. */
const upstreamRequestHeaders = (...args: Parameters<typeof flat>): Record<string, string> => {
  const list = flat(...args)
  const out: Record<string, string> = {}
  for (let i = 0; i < list.length; i += 2) out[list[i]!] = list[i + 1]!
  return out
}

t.test('hop-by-hop request headers are dropped, X-Forwarded-* set (behind a trusted proxy: appended to)', async (t) => {
  const out = upstreamRequestHeaders(
    {
      host: 'corral:11435',
      connection: 'keep-alive, X-Private',
      'keep-alive': 'timeout=5',
      'x-private': 'secret',
      te: 'trailers',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
      'proxy-authorization': 'Basic x',
      'content-length': '12',
      expect: '100-continue',
      authorization: 'Bearer k',
      'content-type': 'application/json',
      'x-forwarded-for': '10.0.0.1',
    },
    { requestId: 'r1', clientAddress: '127.0.0.1', trustedPeer: true, streamedBody: false },
  )
  t.same(out, {
    authorization: 'Bearer k',
    'content-type': 'application/json',
    'x-forwarded-for': '10.0.0.1, 127.0.0.1',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'corral:11435',
    'x-request-id': 'r1',
  })
})

t.test('a streamed body keeps its content-length', async (t) => {
  const out = upstreamRequestHeaders({ 'content-length': '99' }, { requestId: 'r', clientAddress: undefined, trustedPeer: false, streamedBody: true })
  t.equal(out['content-length'], '99')
  t.equal(out['x-forwarded-for'], 'unknown')
})

t.test('from an untrusted client, X-Forwarded-*, Forwarded and X-Real-IP are replaced by what corral sees', async (t) => {
  const claims = {
    host: 'corral:11435',
    'x-forwarded-for': '6.6.6.6',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'bank.example',
    forwarded: 'for=6.6.6.6;proto=https',
    'x-real-ip': '6.6.6.6',
    'content-type': 'application/json',
  }
  const out = upstreamRequestHeaders(claims, { requestId: 'r', clientAddress: '10.1.2.3', trustedPeer: false, streamedBody: false })
  t.same(out, {
    'content-type': 'application/json',
    'x-forwarded-for': '10.1.2.3',
    'x-forwarded-proto': 'http',
    'x-forwarded-host': 'corral:11435',
    'x-request-id': 'r',
  })
  const trusted = upstreamRequestHeaders(claims, { requestId: 'r', clientAddress: '10.1.2.3', trustedPeer: true, streamedBody: false })
  t.match(trusted, {
    'x-forwarded-for': '6.6.6.6, 10.1.2.3',
    'x-forwarded-proto': 'https',
    'x-forwarded-host': 'bank.example',
    forwarded: 'for=6.6.6.6;proto=https',
    'x-real-ip': '6.6.6.6',
  })
})

t.test('hop-by-hop response headers are dropped, X-Request-Id set', async (t) => {
  const out = clientResponseHeaders(
    { 'content-type': 'application/x-ndjson', connection: 'x-hop', 'x-hop': '1', 'keep-alive': 'timeout=4', 'transfer-encoding': 'chunked', 'set-cookie': ['a=1', 'b=2'] },
    'rid',
  )
  t.same(out, { 'content-type': 'application/x-ndjson', 'set-cookie': ['a=1', 'b=2'], 'x-request-id': 'rid' })
})

t.test('request ids from clients are accepted only when sane', async (t) => {
  t.equal(acceptedRequestId('abc-123'), 'abc-123')
  t.equal(acceptedRequestId('has space'), undefined)
  t.equal(acceptedRequestId('x'.repeat(129)), undefined)
  t.equal(acceptedRequestId(['a', 'b']), undefined)
  t.equal(acceptedRequestId(undefined), undefined)
})

t.test('generated request ids are unique and compact', async (t) => {
  const ids = new Set(Array.from({ length: 1000 }, newRequestId))
  t.equal(ids.size, 1000)
  t.ok([...ids].every((id) => acceptedRequestId(id) === id), 'an id corral makes is one it would accept')
  t.match([...ids][0], /^[0-9a-f]{12}-[0-9a-z]+$/)
})
