import t from 'tap'
import { normaliseTarget } from '../../src/limits/request-target.js'

t.test('normal targets pass unchanged (the fast path)', async (t) => {
  for (const target of ['/', '/api/generate', '/api/tags?x=1', '/v1/models/llama3.2:latest', '/api/blobs/sha256:abc', '/api/tags/', '/.well-known/x', '/a...b']) {
    t.equal(normaliseTarget(target), target, target)
  }
})

t.test('dot segments, repeated slashes, backslashes and escapes are normalised', async (t) => {
  const cases: [string, string][] = [
    ['/api/../api/tags', '/api/tags'],
    ['/api/x/../generate', '/api/generate'],
    ['/api/./tags', '/api/tags'],
    ['//api///tags', '/api/tags'],
    ['//evil.example/api/tags', '/evil.example/api/tags'],
    ['/api\\tags', '/api/tags'],
    ['/api/x\\..\\generate', '/api/generate'],
    ['/api/%2e%2e/v1/models', '/v1/models'],
    ['/api/x/%2E%2E/pull', '/api/pull'],
    ['/api%2Fpull', '/api/pull'],
    ['/api%5Cpull', '/api/pull'],
    ['/%61pi/tags', '/api/tags'],
    ['/api/tags?a=../b', '/api/tags?a=../b'],
    ['/api/tags#frag', '/api/tags'],
    ['/v1/models/a%20b', '/v1/models/a%20b'],
    ['/v1/models/%3F%23%25', '/v1/models/%3F%23%25'],
    ['/api/blobs/sha256%3Aabc', '/api/blobs/sha256:abc'],
    ['/x/%C3%A9', '/x/%C3%A9'],
    ['/api/tags/.', '/api/tags'],
    ['/api/..', '/'],
  ]
  for (const [raw, expected] of cases) t.equal(normaliseTarget(raw), expected, raw)
})

t.test('absolute-form keeps only path and query: the host in it chooses nothing', async (t) => {
  t.equal(normaliseTarget('http://evil.example/api/tags?x=1'), '/api/tags?x=1')
  t.equal(normaliseTarget('http://ok@evil.example:8080/x'), '/x')
  t.equal(normaliseTarget('https://evil.example'), '/')
  t.equal(normaliseTarget('http://evil.example?q'), '/?q')
  t.equal(normaliseTarget('http://evil.example/../../etc/passwd'), undefined)
})

t.test('refused: climbing above the root, bad escapes, invalid UTF-8, control characters, other forms', async (t) => {
  for (const raw of ['/..', '/../x', '/api/../../x', '/%2e%2e/x', '/a/%2E%2E%2F%2E%2E/x', '/%zz', '/%', '/%C3', '/%FF', '/a%00b', '/a%0d%0aX-Injected:%201', '*', 'evil.example:443', 'javascript:alert(1)', '']) {
    t.equal(normaliseTarget(raw), undefined, JSON.stringify(raw))
  }
})
