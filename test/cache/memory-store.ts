/** The in-memory store: the contract, plus its byte bound, size cap and usage figures. */
import t from 'tap'
import { KeySpace } from '../../src/cache/cache-key.js'
import { MemoryStore } from '../../src/cache/memory-store.js'
import { storeContract } from '../fixtures/cache-store-contract.js'

const keys = new KeySpace('mem:')
const memory = (maxBytes: number, maxEntryBytes = maxBytes): MemoryStore =>
  new MemoryStore({ maxBytes, maxEntryBytes, layerOf: (key) => keys.layerOf(key) })

storeContract(t, 'memory', async () => ({ store: memory(1024 * 1024), prefix: 'mem:' }))

t.test('bounded in bytes: least recently used entries are evicted and counted', async (t) => {
  const store = memory(12_000, 4_000)
  for (let i = 0; i < 5; i++) await store.set(keys.entry('chunk', 'm', `k${i}`), Buffer.alloc(3000), 60_000)
  const usage = store.usage('chunk')
  t.ok(usage.bytes <= 12_000, `${usage.bytes} bytes held`)
  t.equal(usage.entries, 3)
  t.equal(usage.evictions, 2)
  t.equal(store.get(keys.entry('chunk', 'm', 'k0')), undefined, 'the oldest went first')
  t.equal(await store.set(keys.entry('chunk', 'm', 'big'), Buffer.alloc(5000), 60_000), false, 'over the entry cap: skipped')
  t.same(store.usage('embedding'), { entries: 0, bytes: 0, evictions: 0 })
})

t.test('an entry keeps its decoded view between hits', async (t) => {
  const store = memory(10_000)
  const view = { rendered: true }
  await store.set('mem:embedding:m:v', Buffer.from('x'), 60_000, view)
  t.equal(store.get('mem:embedding:m:v')?.view, view)
})
