/**
 * Streams are relayed chunk by chunk as they arrive (no buffering), and a client that goes away
 * cancels its upstream request at once so an abandoned generation stops using the GPU.
 */
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { request } from 'undici'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { startCorral } from '../fixtures/start-corral.js'

/** Reads a streamed body, recording when each chunk arrived. */
async function timedChunks(body: AsyncIterable<Buffer>): Promise<{ at: number; text: string }[]> {
  const out: { at: number; text: string }[] = []
  for await (const chunk of body) out.push({ at: performance.now(), text: chunk.toString('utf8') })
  return out
}

t.test('NDJSON chunks reach the client as the instance produces them', async (t) => {
  const fake = await startFakeOllama({ tokenDelayMs: 100, tokens: 8 })
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url])
  const res = await request(`${url}/api/generate`, { method: 'POST', body: JSON.stringify({ model: 'llama3.2', prompt: 'stream me' }) })
  t.equal(res.headers['content-type'], 'application/x-ndjson')
  const chunks = await timedChunks(res.body)
  const lines = chunks.map((c) => c.text).join('').split('\n').filter(Boolean)
  t.equal(lines.length, 9, 'eight tokens and the final chunk')
  t.ok(chunks.length >= 8, `arrived as separate chunks (${chunks.length})`)
  // The instance spends 8 x 100 ms producing them; the first must not wait for the last
  // (a buffering proxy would deliver them all at once, a spread of about 0).
  const spread = chunks.at(-1)!.at - chunks[0]!.at
  t.ok(spread > 400, `first chunk arrived ${spread.toFixed(0)} ms before the last`)
})

t.test('SSE chunks of /v1 streams reach the client as produced', async (t) => {
  const fake = await startFakeOllama({ tokenDelayMs: 100, tokens: 8 })
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url])
  const res = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    body: JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'x' }], stream: true }),
  })
  t.match(res.headers['content-type'], /text\/event-stream/)
  const chunks = await timedChunks(res.body)
  const text = chunks.map((c) => c.text).join('')
  t.ok(text.endsWith('data: [DONE]\n\n'))
  t.ok(chunks.at(-1)!.at - chunks[0]!.at > 400, 'spread over the generation time')
})

t.test('abort propagation: mid-stream and before the first byte', async (t) => {
  const fake = await startFakeOllama({ tokenDelayMs: 50, tokens: 200 })
  t.teardown(() => fake.close())
  const { url, corral, logs } = await startCorral(t, [fake.url])

  const midStream = new AbortController()
  const res = await request(`${url}/api/chat`, {
    method: 'POST',
    body: JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'long story' }] }),
    signal: midStream.signal,
  })
  const iterator = res.body[Symbol.asyncIterator]()
  await iterator.next()
  midStream.abort()
  await t.rejects(iterator.next())
  await fake.waitForClosedEarly(1)
  t.pass('the instance saw the connection close mid-stream')

  fake.script({ kind: 'hang' })
  const early = new AbortController()
  const pending = request(`${url}/api/generate`, { method: 'POST', body: JSON.stringify({ model: 'llama3.2', prompt: 'x' }), signal: early.signal })
  await fake.waitForRequests(2)
  early.abort()
  await t.rejects(pending)
  await fake.waitForClosedEarly(2)
  t.pass('the instance saw the close while still loading')

  await corral.proxy.whenIdle()
  t.equal(corral.balancer.instances[0]!.inFlight, 0, 'no in-flight count leaks')
  await fake.waitUntil((f) => f.inFlight === 0)
  t.equal(fake.inFlight, 0, 'the instance is idle again')
  t.ok(logs.filter((l) => l.msg === 'request' && l.client_gone === true).length === 2, 'both logged as client gone')
  t.notOk(logs.some((l) => l.msg === 'attempt failed'), 'a client leaving is not an instance failure')
})
