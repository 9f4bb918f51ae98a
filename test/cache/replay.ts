/**
 * Generations from the cache: a hit answers in the shape asked for (NDJSON stream or one JSON
 * object) with the instance's text, counts and done_reason; only complete 200 answers are kept.
 */
import t from 'tap'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { ndjson, send } from '../fixtures/http.js'
import { startCorral } from '../fixtures/start-corral.js'

/** Drops created_at (the replay's own time) and the durations (a second fake has its own). */
function sameAnswer(value: unknown, durations = true): unknown {
  if (Array.isArray(value)) return value.map((v) => sameAnswer(v, durations))
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) {
      if (k === 'created_at' || (durations && k.endsWith('_duration'))) continue
      out[k] = sameAnswer(v, durations)
    }
    return out
  }
  return value
}

const seeded = { model: 'llama3.2', prompt: 'why is the sky blue?', options: { seed: 42 } }

t.test('a non-streamed generation is answered from the cache, same JSON as the instance', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url])
  const first = await send(url, 'POST', '/api/generate', { ...seeded, stream: false })
  t.equal(first.headers['x-corral-cache'], 'miss')
  await corral.cache!.settle()
  const second = await send(url, 'POST', '/api/generate', { ...seeded, stream: false })
  t.equal(second.status, 200)
  t.equal(second.headers['x-corral-cache'], 'hit')
  t.match(second.headers['content-type'], /application\/json/)
  t.same(sameAnswer(second.json, false), sameAnswer(first.json, false), 'everything but created_at, original durations included')
  t.equal(fake.count('/api/generate'), 1, 'the instance answered once')
})

t.test('a streamed hit is an NDJSON stream of the same shape; streams and objects serve each other', async (t) => {
  const fake = await startFakeOllama()
  const twin = await startFakeOllama()
  t.teardown(() => Promise.all([fake.close(), twin.close()]))
  const { url, corral } = await startCorral(t, [fake.url])
  const streamed = await send(url, 'POST', '/api/generate', seeded)
  t.equal(streamed.headers['x-corral-cache'], 'miss')
  await corral.cache!.settle()
  const again = await send(url, 'POST', '/api/generate', { ...seeded, keep_alive: '1m' })
  t.equal(again.headers['x-corral-cache'], 'hit', 'keep_alive is not in the key')
  t.equal(again.headers['content-type'], 'application/x-ndjson')
  t.same(ndjson(again.text).map((l) => sameAnswer(l, false)), ndjson(streamed.text).map((l) => sameAnswer(l, false)), 'line for line')
  const final = ndjson(again.text).at(-1)!
  t.match(final, { done: true, done_reason: 'stop', eval_count: 8 })
  t.type(final.context, Array)

  const whole = await send(url, 'POST', '/api/generate', { ...seeded, stream: false })
  t.equal(whole.headers['x-corral-cache'], 'hit', 'a streamed answer serves a non-streamed request')
  const direct = await send(twin.url, 'POST', '/api/generate', { ...seeded, stream: false })
  t.same(sameAnswer(whole.json), sameAnswer(direct.json), 'same JSON as an instance answering it')
  t.equal(fake.count('/api/generate'), 1)

  const chat = { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], options: { temperature: 0 } }
  const chatWhole = await send(url, 'POST', '/api/chat', { ...chat, stream: false })
  t.equal(chatWhole.headers['x-corral-cache'], 'miss')
  await corral.cache!.settle()
  const chatStream = await send(url, 'POST', '/api/chat', chat)
  t.equal(chatStream.headers['x-corral-cache'], 'hit', 'a non-streamed answer serves a streamed request')
  const lines = ndjson(chatStream.text)
  const directLines = ndjson((await send(twin.url, 'POST', '/api/chat', chat)).text)
  t.same(lines.at(-1) && sameAnswer(lines.at(-1)), sameAnswer(directLines.at(-1)), 'the final chunk: done, done_reason, counts')
  t.equal(lines.slice(0, -1).map((l) => (l.message as { content: string }).content).join(''), (chatWhole.json as { message: { content: string } }).message.content)
  t.ok(lines.slice(0, -1).every((l) => l.done === false && (l.message as { role: string }).role === 'assistant'), 'content chunks')
  t.equal(fake.count('/api/chat'), 1)
})

/** SSE events as objects ([DONE] as the string), without the fields each instance makes up. */
function events(text: string): unknown[] {
  return text
    .split('\n\n')
    .filter((e) => e.trim() !== '')
    .map((e) => {
      const data = e.replace(/^data: /, '')
      if (data === '[DONE]') return data
      const { id: _id, created: _created, ...rest } = JSON.parse(data) as Record<string, unknown>
      return rest
    })
}
const withoutIds = (value: unknown): unknown => {
  const { id: _id, created: _created, ...rest } = value as Record<string, unknown>
  return rest
}

t.test('/v1: one-object answers and SSE streams from the same stored answer', async (t) => {
  const fake = await startFakeOllama()
  const twin = await startFakeOllama()
  t.teardown(() => Promise.all([fake.close(), twin.close()]))
  const { url, corral } = await startCorral(t, [fake.url])
  const body = { model: 'llama3.2', messages: [{ role: 'user', content: 'hi' }], seed: 7 }
  const first = await send(url, 'POST', '/v1/chat/completions', body)
  t.equal(first.headers['x-corral-cache'], 'miss')
  await corral.cache!.settle()
  const second = await send(url, 'POST', '/v1/chat/completions', body)
  t.equal(second.headers['x-corral-cache'], 'hit')
  t.equal(second.text, first.text, 'the instance bytes')

  const streamed = { ...body, stream: true, stream_options: { include_usage: true } }
  const sse = await send(url, 'POST', '/v1/chat/completions', streamed)
  t.equal(sse.headers['x-corral-cache'], 'hit', 'a one-object answer serves a streamed request')
  t.match(sse.headers['content-type'], /text\/event-stream/)
  const directSse = await send(twin.url, 'POST', '/v1/chat/completions', streamed)
  const got = events(sse.text)
  const want = events(directSse.text)
  t.same(got.slice(-3), want.slice(-3), 'finish chunk, usage chunk and [DONE] as the instance sends them')
  const text = (list: unknown[]): string =>
    list.map((e) => ((e as { choices?: { delta?: { content?: string } }[] }).choices?.[0]?.delta?.content ?? '')).join('')
  t.equal(text(got), text(want), 'the same text')

  const completion = { model: 'llama3.2', prompt: 'once', temperature: 0, stream: true, stream_options: { include_usage: true } }
  t.equal((await send(url, 'POST', '/v1/completions', completion)).headers['x-corral-cache'], 'miss')
  await corral.cache!.settle()
  const whole = await send(url, 'POST', '/v1/completions', { ...completion, stream: false })
  t.equal(whole.headers['x-corral-cache'], 'hit', 'a streamed answer (with usage) serves a one-object request')
  const directWhole = await send(twin.url, 'POST', '/v1/completions', { ...completion, stream: false })
  t.same(withoutIds(whole.json), withoutIds(directWhole.json), 'the same object as the instance, id and created aside')

  const noUsage = { ...body, messages: [{ role: 'user', content: 'other' }], stream: true }
  t.equal((await send(url, 'POST', '/v1/chat/completions', noUsage)).headers['x-corral-cache'], 'miss')
  await corral.cache!.settle()
  t.equal((await send(url, 'POST', '/v1/chat/completions', noUsage)).headers['x-corral-cache'], 'miss', 'a stream without usage is not stored')
  t.equal(fake.count('/v1/chat/completions'), 3)
  t.equal(fake.count('/v1/completions'), 1)
})

t.test('inference policy: deterministic by default, always, off', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const unseeded = { model: 'llama3.2', prompt: 'tell me', stream: false }
  const dflt = await startCorral(t, [fake.url])
  t.equal((await send(dflt.url, 'POST', '/api/generate', unseeded)).headers['x-corral-cache'], 'bypass')
  t.equal((await send(dflt.url, 'POST', '/api/generate', unseeded)).headers['x-corral-cache'], 'bypass')
  t.equal(fake.count('/api/generate'), 2, 'no seed, temperature not 0: every request reaches the instance')

  const always = await startCorral(t, [fake.url], { cache: { layers: { inference: { policy: 'always' } } } })
  t.equal((await send(always.url, 'POST', '/api/generate', unseeded)).headers['x-corral-cache'], 'miss')
  await always.corral.cache!.settle()
  t.equal((await send(always.url, 'POST', '/api/generate', unseeded)).headers['x-corral-cache'], 'hit')
  t.equal(fake.count('/api/generate'), 3)

  const off = await startCorral(t, [fake.url], { cache: { layers: { inference: { policy: 'off' } } } })
  await send(off.url, 'POST', '/api/generate', { ...unseeded, options: { seed: 1 } })
  t.equal((await send(off.url, 'POST', '/api/generate', { ...unseeded, options: { seed: 1 } })).headers['x-corral-cache'], 'bypass')
  t.equal(fake.count('/api/generate'), 5)

  const quiet = await startCorral(t, [fake.url], { cache: { response_header: false } })
  t.equal((await send(quiet.url, 'POST', '/api/generate', seeded)).headers['x-corral-cache'], undefined, 'the header can be turned off')
  await quiet.corral.cache!.settle()
  const before = fake.count('/api/generate')
  t.equal((await send(quiet.url, 'POST', '/api/generate', seeded)).status, 200)
  t.equal(fake.count('/api/generate'), before, 'still a hit without the header')

  const disabled = await startCorral(t, [fake.url], { cache: { enabled: false } })
  for (let i = 0; i < 2; i++) {
    const res = await send(disabled.url, 'POST', '/api/embed', { model: 'nomic-embed-text', input: 'x' })
    t.equal(res.headers['x-corral-cache'], undefined, 'cache.enabled false: nothing cached, no header')
  }
  t.equal(fake.count('/api/embed'), 2)
})

t.test('never stored: errors, cut streams, load requests, no-store; no-cache refreshes', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url], { proxy: { max_attempts: 1 } })
  const again = async (body: object, headers: Record<string, string> = {}): Promise<string | string[] | undefined> => {
    await corral.cache!.settle()
    return (await send(url, 'POST', '/api/generate', body, headers)).headers['x-corral-cache']
  }

  const missing = { model: 'nope', prompt: 'x', options: { seed: 1 } }
  t.equal((await send(url, 'POST', '/api/generate', missing)).status, 404)
  t.equal(await again(missing), 'bypass', 'a model discovery never saw (no digest) is passed through, its 404 not stored')

  fake.script({ kind: 'status', status: 500 }, { path: '/api/generate' })
  const failing = { ...seeded, prompt: 'failing' }
  t.equal((await send(url, 'POST', '/api/generate', failing)).status, 500)
  t.equal(await again(failing), 'miss', 'a 500 is not stored')

  fake.script({ kind: 'die-after-chunks', chunks: 3 }, { path: '/api/generate' })
  const cut = { ...seeded, prompt: 'cut short' }
  const broken = await send(url, 'POST', '/api/generate', cut)
  t.match(broken.text, /"error"/, 'the client saw the failure')
  t.equal(await again(cut), 'miss', 'a cut stream is not stored')
  t.equal(await again(cut), 'hit', 'the complete retry is')

  const load = { model: 'llama3.2', prompt: '', options: { seed: 1 } }
  t.equal((await send(url, 'POST', '/api/generate', load)).headers['x-corral-cache'], 'bypass', 'an empty prompt loads the model')
  t.equal((await send(url, 'POST', '/api/chat', { model: 'llama3.2', messages: [], options: { seed: 1 } })).headers['x-corral-cache'], 'bypass')

  const limited = { ...seeded, prompt: 'short', options: { seed: 1, num_predict: 2 } }
  const short = await send(url, 'POST', '/api/generate', { ...limited, stream: false })
  t.match(short.json, { done_reason: 'length' })
  t.equal(await again(limited), 'hit', 'done_reason length is a complete answer')

  const secret = { ...seeded, prompt: 'secret' }
  t.equal((await send(url, 'POST', '/api/generate', secret, { 'cache-control': 'no-store' })).headers['x-corral-cache'], 'bypass')
  t.equal(await again(secret), 'miss', 'no-store: not stored')
  const before = fake.count('/api/generate')
  t.equal(await again(secret, { 'cache-control': 'no-cache' }), 'miss', 'no-cache skips the lookup')
  t.equal(fake.count('/api/generate'), before + 1)
  t.equal(await again(secret), 'hit')
})
