/**
 * Request smuggling probes (what HAProxy's and PortSwigger's test suites send): every one is
 * refused with 400 in Ollama's shape, the connection is closed, and no request hidden in a body
 * ever reaches an instance. test/server.ts covers Content-Length with Transfer-Encoding and a
 * duplicate Content-Length as a client sends them; these are the rest.
 */
import t from 'tap'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { startCorral } from '../fixtures/start-corral.js'
import { openSession, statuses } from '../fixtures/raw-session.js'

const SMUGGLED = 'DELETE /api/delete HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n{"model":"llama3.2"}'
const GOOD = 'GET /api/version HTTP/1.1\r\nHost: x\r\n\r\n'

const probes: [string, string][] = [
  ['Transfer-Encoding: chunked, identity', `POST /api/generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['Transfer-Encoding: identity, chunked', `POST /api/generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity, chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['Transfer-Encoding twice', `POST /api/generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['Transfer-Encoding with a space before the colon', `POST /api/generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['Content-Length with Transfer-Encoding, body hiding a request', `POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['duplicate differing Content-Length', `POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  ['Content-Length as a list', `POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 0, ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  ['obs-fold continuation line', `POST /api/generate HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n Transfer-Encoding: chunked\r\nContent-Length: 0\r\n\r\n${SMUGGLED}`],
  ['bare LF line ends', `POST /api/generate HTTP/1.1\nHost: x\nContent-Length: 0\n\n${SMUGGLED}`],
  ['bare LF after one CRLF line', `POST /api/generate HTTP/1.1\r\nHost: x\nContent-Length: 0\r\n\r\n${SMUGGLED}`],
  ['bare CR', `POST /api/generate HTTP/1.1\r\nHost: x\rContent-Length: 0\r\n\r\n${SMUGGLED}`],
  ['bad chunk size', `POST /api/generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n${SMUGGLED}`],
  ['chunk with bare LF', `POST /api/generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\n{}\n0\n\n${SMUGGLED}`],
  ['two Host headers', `GET /api/tags HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n${SMUGGLED}`],
  ['no Host header', `GET /api/tags HTTP/1.1\r\nAccept: */*\r\n\r\n${SMUGGLED}`],
  ['NUL in a header value', `GET /api/tags HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n${SMUGGLED}`],
  ['HTTP/2 preface on HTTP/1.1', `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n${SMUGGLED}`],
]

t.test('smuggling probes: 400, connection closed, nothing hidden reaches the instance', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url])
  for (const [name, bytes] of probes) {
    const session = await openSession(url)
    session.socket.write(bytes)
    const { text, open } = await session.closed()
    t.same(statuses(text), [400], `${name}: one answer, 400`)
    t.match(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)), { error: String }, `${name}: in Ollama's shape`)
    t.equal(open, false, `${name}: connection closed`)
  }
  t.equal(fake.count(), 0, 'no request, smuggled or not, reached the instance')
})

t.test('a good request before a smuggling probe on one connection is answered; the probe is not', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url])
  const session = await openSession(url)
  session.socket.write(GOOD + probes[1]![1])
  const { text, open } = await session.closed()
  t.same(statuses(text), [200, 400])
  t.equal(open, false)
  t.same(fake.requests.map((r) => `${r.method} ${r.path}`), ['GET /api/version'], 'the instance saw the one legitimate request')
})
