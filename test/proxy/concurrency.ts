/**
 * Many clients at once: every request answered in full, the work spread over the instances, and
 * every in-flight count back to zero afterwards (nothing leaks).
 */
import t from 'tap'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { startCorral } from '../fixtures/start-corral.js'
import { ndjson, send } from '../fixtures/http.js'

t.test('120 concurrent mixed requests over two instances', async (t) => {
  const fakes = await Promise.all([startFakeOllama({ numParallel: 4, tokenDelayMs: 3 }), startFakeOllama({ numParallel: 4, tokenDelayMs: 3 })])
  t.teardown(() => Promise.all(fakes.map((f) => f.close())))
  // No cap reached (so no queue): round-robin's split is exact.
  const { url, corral } = await startCorral(t, fakes.map((f) => f.url), {
    instances: fakes.map((f, i) => ({ url: f.url, name: `i${i}`, max_concurrency: 120 })),
    balancer: { policy: 'round-robin' },
  })
  const requests = Array.from({ length: 120 }, (_, i) => {
    switch (i % 3) {
      case 0:
        return send(url, 'POST', '/api/generate', { model: 'llama3.2', prompt: `question ${i}` })
      case 1:
        return send(url, 'POST', '/api/chat', { model: 'llama3.2', messages: [{ role: 'user', content: `q ${i}` }], stream: false })
      default:
        return send(url, 'POST', '/api/embed', { model: 'nomic-embed-text', input: [`chunk ${i}`, `chunk ${i + 1}`] })
    }
  })
  const answers = await Promise.all(requests)
  t.same(answers.map((a) => a.status), answers.map(() => 200), 'every request answered 200')
  const streams = answers.filter((_, i) => i % 3 === 0)
  t.ok(streams.every((a) => ndjson(a.text).at(-1)!.done === true), 'every stream complete')
  t.ok(answers.filter((_, i) => i % 3 === 2).every((a) => (a.json as { embeddings: number[][] }).embeddings.length === 2), 'every embedding batch complete')
  t.same(fakes.map((f) => f.count()), [60, 60], 'round-robin: an even split')
  await corral.proxy.whenIdle()
  t.same(corral.balancer.instances.map((i) => i.inFlight), [0, 0], 'no in-flight count leaked')
  t.equal(corral.proxy.active, 0)
})

t.test('least-inflight sends more of a closed loop to the faster instance', async (t) => {
  const slow = await startFakeOllama({ tokenDelayMs: 40 })
  const fast = await startFakeOllama({ tokenDelayMs: 1 })
  t.teardown(() => Promise.all([slow.close(), fast.close()]))
  const { url } = await startCorral(t, [slow.url, fast.url], { balancer: { policy: 'least-inflight' } })
  // Four clients, each sending its next request when the previous one is answered.
  const client = async (c: number): Promise<void> => {
    for (let i = 0; i < 10; i++) {
      const res = await send(url, 'POST', '/api/generate', { model: 'llama3.2', prompt: `c${c} q${i}`, stream: false })
      if (res.status !== 200) throw new Error(`status ${res.status}`)
    }
  }
  await Promise.all([0, 1, 2, 3].map(client))
  t.equal(slow.count() + fast.count(), 40)
  t.ok(fast.count() > 2 * slow.count(), `fast ${fast.count()} vs slow ${slow.count()}`)
})
