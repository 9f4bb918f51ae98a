import t from 'tap'
import { nestsDeeperThan } from '../../src/limits/json-depth.js'

const b = (s: string): Buffer => Buffer.from(s)

t.test('counts nesting of arrays and objects, not brackets inside strings', async (t) => {
  t.equal(nestsDeeperThan(b('{"a":[1,{"b":[2]}]}'), 4), false)
  t.equal(nestsDeeperThan(b('{"a":[1,{"b":[2]}]}'), 3), true)
  t.equal(nestsDeeperThan(b(`{"p":"${'['.repeat(1000)}"}`), 2), false, 'brackets in a string')
  t.equal(nestsDeeperThan(b(`{"p":"\\"${'['.repeat(10)}"}`), 2), false, 'an escaped quote does not end the string')
  t.equal(nestsDeeperThan(b(`{"p":"\\\\",${'['.repeat(5)}`), 3), true, 'an escaped backslash does')
  t.equal(nestsDeeperThan(b('[]'.repeat(10_000)), 1), false, 'siblings are not depth')
})

t.test('stops at the first excess: 10 MB of [ is answered at once', async (t) => {
  t.equal(nestsDeeperThan(Buffer.alloc(10_000_000, '['), 256), true)
})
