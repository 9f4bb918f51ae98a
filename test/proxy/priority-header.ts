/**
 * How a request gets its priority class, through a real corral in front of a fake Ollama (the
 * class shows in /api/load-balancer-stats): embedding batches of bulk_batch_size inputs are bulk,
 * a key's `priority` classes all its requests, and X-Corral-Priority is honoured from an admin key
 * or with auth off, and ignored from a plain key; the queue wait metric counts by class.
 */
import t from 'tap'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { startCorral } from '../fixtures/start-corral.js'

const PLAIN = 'plain-key-5b2e8c1d9a7f4630'
const INGEST = 'ingest-key-3c9a1e7b5d2f8046'
const ADMIN = 'admin-key-8e4b2d6f1a9c3057'
const bearer = (key: string, more: Record<string, string> = {}): Record<string, string> => ({ authorization: `Bearer ${key}`, ...more })
const BULK = { 'x-corral-priority': 'bulk' }

interface ClassStats {
  served: number
}

async function served(url: string, headers: Record<string, string>): Promise<{ interactive: number; bulk: number }> {
  const stats = await send(url, 'GET', '/api/load-balancer-stats', undefined, headers)
  const queue = (stats.json as { queue: { interactive: ClassStats; bulk: ClassStats } }).queue
  return { interactive: queue.interactive.served, bulk: queue.bulk.served }
}

let n = 0
const generate = (): Record<string, unknown> => ({ model: 'llama3.2', prompt: `hello ${n++}`, stream: false })

t.test('with auth on: batches are bulk, a key may be bulk, the header counts from admins only', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const auth = {
    enabled: true,
    keys: [
      { name: 'plain', key: PLAIN },
      { name: 'ingest', key: INGEST, priority: 'bulk', weight: 2 },
      { name: 'ops', key: ADMIN, admin: true },
    ],
  }
  const { url } = await startCorral(t, [fake.url], { auth, balancer: { priority: { bulk_batch_size: 4 } } })
  const admin = bearer(ADMIN)

  t.equal((await send(url, 'POST', '/api/generate', generate(), bearer(PLAIN, BULK))).status, 200)
  t.same(await served(url, admin), { interactive: 1, bulk: 0 }, 'a plain key\'s header is ignored')

  t.equal((await send(url, 'POST', '/api/generate', generate(), bearer(ADMIN, BULK))).status, 200)
  t.same(await served(url, admin), { interactive: 1, bulk: 1 }, 'an admin key\'s header is honoured')

  t.equal((await send(url, 'POST', '/api/generate', generate(), bearer(INGEST))).status, 200)
  t.same(await served(url, admin), { interactive: 1, bulk: 2 }, 'a key with priority: bulk')

  const batch = { model: 'nomic-embed-text', input: ['a', 'b', 'c', 'd'] }
  t.equal((await send(url, 'POST', '/api/embed', batch, bearer(PLAIN))).status, 200)
  t.same(await served(url, admin), { interactive: 1, bulk: 3 }, 'a batch of bulk_batch_size inputs')

  t.equal((await send(url, 'POST', '/api/embed', { model: 'nomic-embed-text', input: ['q'] }, bearer(PLAIN))).status, 200)
  t.same(await served(url, admin), { interactive: 2, bulk: 3 }, 'a query embedding')
})

t.test('with auth off the header is honoured', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url])
  t.equal((await send(url, 'POST', '/api/generate', generate(), BULK)).status, 200)
  t.equal((await send(url, 'POST', '/api/generate', generate(), { 'x-corral-priority': 'nonsense' })).status, 200)
  t.same(await served(url, {}), { interactive: 1, bulk: 1 }, 'bulk as asked; an unknown value is ignored')
  const metrics = await send(url, 'GET', '/metrics')
  t.match(metrics.text, /^corral_queue_wait_seconds_count\{class="bulk"\} 1$/m, 'the queue wait histogram counts by class')
  t.match(metrics.text, /^corral_queue_wait_seconds_count\{class="interactive"\} 1$/m)
})
