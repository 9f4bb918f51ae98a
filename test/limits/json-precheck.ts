import t from 'tap'
import { precheckJson } from '../../src/limits/json-precheck.js'

const b = (s: string): Buffer => Buffer.from(s)
const deeper = (max: number): string => `request body nests deeper than ${max} levels`

t.test('counts nesting of arrays and objects, not brackets inside strings', async (t) => {
  t.equal(precheckJson(b('{"a":[1,{"b":[2]}]}'), 4), undefined)
  t.equal(precheckJson(b('{"a":[1,{"b":[2]}]}'), 3), deeper(3))
  t.equal(precheckJson(b(`{"p":"${'['.repeat(1000)}"}`), 2), undefined, 'brackets in a string')
  t.equal(precheckJson(b(`{"p":"\\"${'['.repeat(10)}"}`), 2), undefined, 'an escaped quote does not end the string')
  t.equal(precheckJson(b(`{"p":"\\\\",${'['.repeat(5)}`), 3), deeper(3), 'an escaped backslash does')
  t.equal(precheckJson(b('[]'.repeat(10_000)), 1), undefined, 'siblings are not depth')
})

t.test('stops at the first excess: 10 MB of [ is answered at once', async (t) => {
  t.equal(precheckJson(Buffer.alloc(10_000_000, '[')), deeper(256))
})

t.test('numbers out of range are refused; big but finite ones, and e in strings and literals, are not', async (t) => {
  t.equal(precheckJson(b('{"insecure":1e400}')), 'number out of range in request body: 1e400')
  t.equal(precheckJson(b('{"x":[-1E+309]}')), 'number out of range in request body: -1E+309')
  t.equal(precheckJson(b(`{"x":${'9'.repeat(400)}}`)), `number out of range in request body: ${'9'.repeat(40)}`)
  for (const ok of ['{"x":1e308,"y":-1.5e-400,"z":true,"w":false}', '{"e":"1e400"}', `{"x":${'9'.repeat(300)}}`, '{"x":0.000001e5}', '[1,2,3e2]']) {
    t.equal(precheckJson(b(ok)), undefined, ok)
  }
})
