/** The `auth:` block: one rule per field, every problem with its path; secrets masked for printing. */
import t from 'tap'
import { keyHash } from '../../src/config/auth-config.js'
import { configFromObject, type ConfigError } from '../../src/config/load-config.js'
import { maskSecrets } from '../../src/config/mask-secrets.js'

function problems(auth: Record<string, unknown>): readonly string[] {
  try {
    configFromObject({ auth })
    return []
  } catch (err) {
    return (err as ConfigError).problems
  }
}

const KEY = 'a-key-of-sixteen-or-more'

t.test('defaults: off, no keys, unlimited', async (t) => {
  const { config } = configFromObject({})
  t.same(config.auth, { enabled: false, keys: [], jwt: undefined, metricsOpen: false, limits: { rpm: 0, maxConcurrency: 0 } })
  t.ok(Object.isFrozen(config.auth.limits))
})

t.test('keys: hashed at load, limits inherited or overridden', async (t) => {
  const { config } = configFromObject({
    auth: {
      enabled: true,
      limits: { rpm: 60, max_concurrency: 4 },
      keys: [
        { name: 'a', key: KEY },
        { name: 'b', key_sha256: keyHash(KEY).toUpperCase(), admin: true, rpm: 0, max_concurrency: 1, priority: 'bulk', weight: 2.5 },
      ],
    },
  })
  t.same(config.auth.keys, [
    { name: 'a', sha256: keyHash(KEY), admin: false, limits: { rpm: 60, maxConcurrency: 4 }, cacheGroup: undefined, priority: undefined, weight: 1 },
    { name: 'b', sha256: keyHash(KEY), admin: true, limits: { rpm: 0, maxConcurrency: 1 }, cacheGroup: undefined, priority: 'bulk', weight: 2.5 },
  ])
})

t.test('every rule, with its path', async (t) => {
  t.same(problems({ enabled: true }), ['auth.keys must list at least one key when auth.enabled is true (or set auth.jwt)'])
  t.same(problems({ enabled: false }), [], 'off without keys is fine')
  t.same(problems({ keys: [{ name: 'a' }] }), ['auth.keys[0].key set exactly one of key or key_sha256'])
  t.same(problems({ keys: [{ name: 'a', key: KEY, key_sha256: keyHash(KEY) }] }), ['auth.keys[0].key set exactly one of key or key_sha256'])
  t.same(problems({ keys: [{ name: 'a', key: 'short' }] }), ['auth.keys[0].key must be at least 16 characters'])
  t.same(problems({ keys: [{ name: 'a', key: KEY, weight: 0 }] }), ['auth.keys[0].weight must be more than 0, got 0'])
  t.same(problems({ keys: [{ name: 'a', key: KEY, priority: 'urgent' }] }).length, 1, 'priority is interactive or bulk')
  t.same(problems({ keys: [{ name: 'a', key_sha256: 'abc' }] }), ['auth.keys[0].key_sha256 must be 64 hex digits (sha256 of the key)'])
  t.match(problems({ keys: [{ name: 'has space', key: KEY }] }), [/^auth\.keys\[0\]\.name must be 1-64 letters/])
  t.same(problems({ keys: [{ name: 'a', key: KEY }, { name: 'a', key: `${KEY}2` }] }), ['auth.keys[1].name duplicates the name of keys[0]: "a"'])
  t.same(problems({ keys: [{ name: 'a', key: KEY, rpm: -1 }] }), ['auth.keys[0].rpm must be at least 0, got -1'])
  t.same(problems({ limits: { max_concurrency: 1.5 } }), ['auth.limits.max_concurrency must be a whole number, got number 1.5'])
  t.same(problems({ keys: [{ name: 'a', key: KEY, scope: 'admin' }] }), ['auth.keys[0] has unknown key "scope"'])
  t.same(problems({ jwt: { secret: 'x'.repeat(32), clock_tolerance: 'soon' } }), ['auth.jwt.clock_tolerance must be a duration like "30s", got "soon"'])
})

t.test('keys and the JWT secret are masked for printing', async (t) => {
  const { effective } = configFromObject({
    auth: { keys: [{ name: 'a', key: KEY }, { name: 'b', key_sha256: keyHash(KEY) }], jwt: { secret: 'y'.repeat(40) } },
  })
  const masked = maskSecrets(effective)
  t.equal(masked.auth.keys[0]?.key, '***')
  t.equal(masked.auth.keys[1]?.key_sha256, keyHash(KEY), 'a hash is not a secret')
  t.equal(masked.auth.jwt?.secret, '***')
  t.equal(effective.auth.keys[0]?.key, KEY, 'the original is untouched')
})
