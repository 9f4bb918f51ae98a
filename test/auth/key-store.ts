/** Key lookup by hash and the bounded metric labels of JWT names. */
import t from 'tap'
import { KeyLabels } from '../../src/auth/key-labels.js'
import { KeyStore } from '../../src/auth/key-store.js'
import { bearerToken } from '../../src/auth/authenticator.js'
import { keyHash } from '../../src/config/auth-config.js'

const limits = { rpm: 0, maxConcurrency: 0 }

t.test('a key is found by its hash only', async (t) => {
  const store = new KeyStore([
    { name: 'a', sha256: keyHash('key-aaaaaaaaaaaaaaaa'), admin: false, limits, cacheGroup: undefined, priority: undefined, weight: 1 },
    { name: 'b', sha256: keyHash('key-bbbbbbbbbbbbbbbb'), admin: true, limits, cacheGroup: 'team', priority: undefined, weight: 1 },
  ])
  t.equal(store.size, 2)
  t.match(store.lookup('key-bbbbbbbbbbbbbbbb'), { name: 'b', label: 'b', admin: true })
  t.match(store.lookup('key-aaaaaaaaaaaaaaaa'), { name: 'a', admin: false, cachePartition: 'key:a' })
  t.match(store.lookup('key-bbbbbbbbbbbbbbbb'), { cachePartition: 'group:team' }, 'a key in a cache group shares its partition')
  t.equal(store.lookup('key-aaaaaaaaaaaaaaab'), undefined)
  t.equal(store.lookup(''), undefined)
  t.equal(new KeyStore([]).lookup('anything'), undefined)
})

t.test('bearer tokens', async (t) => {
  t.equal(bearerToken('Bearer abc'), 'abc')
  t.equal(bearerToken('bearer\tabc '), 'abc')
  t.equal(bearerToken('Bearer'), undefined)
  t.equal(bearerToken('Bearer a b'), undefined)
  t.equal(bearerToken('Basic abc'), undefined)
  t.equal(bearerToken(undefined), undefined)
})

t.test('JWT names keep their own label up to the cap, then share jwt:other', async (t) => {
  const labels = new KeyLabels(2)
  t.equal(labels.labelOf('a'), 'a')
  t.equal(labels.labelOf('b'), 'b')
  t.equal(labels.labelOf('c'), 'jwt:other')
  t.equal(labels.labelOf('a'), 'a', 'a known name keeps its label')
})
