/**
 * limits.max_body_size per kind of route, the streamed-upload limit, and the checks on JSON
 * bodies (UTF-8, nesting) that keep a hostile body from blocking or breaking corral.
 */
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'
import t from 'tap'
import { request } from 'undici'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { startCorral } from '../fixtures/start-corral.js'
import { send } from '../fixtures/http.js'
import { openSession } from '../fixtures/raw-session.js'

const limits = { max_body_size: { generation: '8KiB', embedding: '4KiB', model: '1KiB', other: '2KiB', upload: '64KiB' } }

t.test('each kind of route has its own body limit', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], { limits })
  const pad = 'x'.repeat(6 * 1024)
  const cases: [string, string, unknown, number][] = [
    ['POST', '/api/generate', { model: 'llama3.2', prompt: pad, stream: false }, 200],
    ['POST', '/v1/chat/completions', { model: 'llama3.2', messages: [{ role: 'user', content: pad }] }, 200],
    ['POST', '/api/embed', { model: 'nomic-embed-text', input: pad }, 413],
    ['POST', '/v1/embeddings', { model: 'nomic-embed-text', input: pad }, 413],
    ['POST', '/api/embed', { model: 'nomic-embed-text', input: 'x'.repeat(3000) }, 200],
    ['POST', '/api/show', { model: 'llama3.2', pad: 'x'.repeat(1100) }, 413],
    ['POST', '/api/show', { model: 'llama3.2' }, 200],
    ['POST', '/api/experimental/web_search', { query: 'x'.repeat(3000) }, 413],
  ]
  for (const [method, path, body, status] of cases) {
    const res = await send(url, method, path, body)
    t.equal(res.status, status, `${path} ${JSON.stringify(body).length} bytes`)
    if (status === 413) t.match(JSON.stringify(res.json), /larger than the limit of \d+ bytes/)
  }
  t.equal(fake.count('/api/embed'), 1)
  t.equal(fake.count('/api/experimental/web_search'), 0)
})

t.test('uploads: a declared size over the limit is refused before the instance is asked; a chunked one is cut at it', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, corral } = await startCorral(t, [fake.url], { limits })
  const blob = Buffer.alloc(100 * 1024, 7)
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`
  const declared = await request(`${url}/api/blobs/${digest}`, { method: 'POST', body: blob })
  t.equal(declared.statusCode, 413)
  t.same(await declared.body.json(), { error: 'request body is larger than the limit of 65536 bytes' })
  t.equal(fake.count(), 0, 'nothing was sent')
  const chunked = await request(`${url}/api/blobs/${digest}`, {
    method: 'POST',
    body: Readable.from(Array.from({ length: 10 }, (_, i) => blob.subarray(i * 10240, (i + 1) * 10240))),
  })
  t.equal(chunked.statusCode, 413, 'chunked: cut at the limit')
  t.same(await chunked.body.json(), { error: 'request body is larger than the limit of 65536 bytes' })
  t.equal(corral.balancer.instances[0]!.failures, 0, "the client's oversized upload is not held against the instance")
  t.equal((await send(url, 'HEAD', `/api/blobs/${digest}`)).status, 404, 'the instance kept nothing')
  const small = Buffer.alloc(32 * 1024, 9)
  const smallDigest = `sha256:${createHash('sha256').update(small).digest('hex')}`
  const fits = await request(`${url}/api/blobs/${smallDigest}`, { method: 'POST', body: Readable.from([small.subarray(0, 16384), small.subarray(16384)]) })
  t.equal(fits.statusCode, 201, 'a chunked upload under the limit goes through whole')
  await fits.body.dump()
})

t.test('JSON bodies: invalid UTF-8, deep nesting and out-of-range numbers get 400 at once; reasonable nesting passes', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url])
  const latin1 = Buffer.concat([Buffer.from('{"model":"llama3.2","prompt":"caf'), Buffer.from([0xe9]), Buffer.from('"}')])
  const bad = await send(url, 'POST', '/api/generate', latin1)
  t.equal(bad.status, 400)
  t.same(bad.json, { error: 'request body is not valid UTF-8' })
  // 2 MB of `[`: parsing this would hold the event loop for a long time.
  const deep = await send(url, 'POST', '/api/chat', `{"model":"llama3.2","messages":${'['.repeat(2_000_000)}`)
  t.equal(deep.status, 400)
  t.same(deep.json, { error: 'request body nests deeper than 256 levels' })
  const deepOptions = `{"model":"llama3.2","prompt":"x","options":{"a":${'['.repeat(300)}${']'.repeat(300)}}}`
  t.equal((await send(url, 'POST', '/api/generate', deepOptions)).status, 400)
  const schema = `{"model":"llama3.2","prompt":"x","stream":false,"format":${'{"type":"object","properties":{"a":'.repeat(50)}{"type":"string"}${'}}'.repeat(50)}}`
  t.equal((await send(url, 'POST', '/api/generate', schema)).status, 200, 'a 100-level JSON schema passes')
  // Found by the fuzz test: the pull fan-out re-serialises its body, and Infinity became null.
  const huge = await send(url, 'POST', '/api/pull', '{"model":"llama3.2","stream":false,"insecure":1e400}')
  t.equal(huge.status, 400)
  t.same(huge.json, { error: 'number out of range in request body: 1e400' })
  t.equal(fake.count('/api/generate'), 1)
  t.equal(fake.count('/api/chat'), 0)
  t.equal(fake.count('/api/pull'), 0)
})

t.test('Expect: 100-continue: the 100 comes only when the body will be taken; 413, 405 and 429 come before any upload', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], { limits })
  const big = await openSession(url)
  big.socket.write('POST /api/generate HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 100000\r\n\r\n')
  // The whole answer (head and error body) comes while the upload is still owed; once the client
  // gives up (ends its side) the lingering close ends too.
  t.match(await big.until(/\r\n\r\n\{.*\}$/s), /^HTTP\/1\.1 413 /, 'told 413 at once, without a 100 first')
  big.socket.end()
  t.equal((await big.closed()).open, false, 'closed once the client ends its side')
  const trace = await openSession(url)
  trace.socket.write('TRACE /api/generate HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n')
  t.match(await trace.until(/\r\n\r\n\{.*\}$/s), /^HTTP\/1\.1 405 /)
  trace.socket.end()
  t.equal((await trace.closed()).open, false)
  const body = JSON.stringify({ model: 'llama3.2', prompt: 'continue', stream: false })
  const fits = await openSession(url)
  fits.socket.write(`POST /api/generate HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\nContent-Length: ${body.length}\r\n\r\n`)
  await new Promise<void>((resolve) => fits.socket.once('data', () => resolve()))
  t.match(fits.received(), /^HTTP\/1\.1 100 Continue\r\n\r\n$/, 'a body that fits is asked for')
  fits.socket.write(body)
  t.match((await fits.closed()).text, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 /)
  t.equal(fake.count('/api/generate'), 1)
})
