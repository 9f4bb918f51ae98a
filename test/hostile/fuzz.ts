/**
 * The fuzz test: a few hundred seeded hostile requests, sent as raw bytes at every route family
 * while a steady stream of good requests (streamed and not) runs through the same corral. Every
 * bad request must get a 4xx (in Ollama's shape when corral makes it; the instance's own answer
 * when it gets there, like Ollama's plain 404 for an unknown path), no good request may fail,
 * nothing may crash (an uncaught exception fails the run) and nothing may stay in flight.
 *
 * Reproduce a failure with CORRAL_FUZZ_SEED=<the seed printed first>.
 */
import { connect } from 'node:net'
import { performance } from 'node:perf_hooks'
import t from 'tap'
import { request } from 'undici'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { startCorral } from '../fixtures/start-corral.js'
import { ndjson } from '../fixtures/http.js'
import { Random, hostileCase, type HostileCase } from '../fixtures/hostile-requests.js'

const CASES = 300
const CONCURRENCY = 8
const BODY_BYTES = 64 * 1024
const HEADER_BYTES = 8 * 1024

interface Reply {
  status: number
  type: string
  body: string
}

/** Sends one case's bytes on a fresh connection and reads the answer until corral closes it. */
function exchange(port: number, bytes: Buffer): Promise<Reply | string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const chunks: Buffer[] = []
    const timer = setTimeout(() => {
      socket.destroy()
      resolve('no answer within 8s')
    }, 8000)
    socket.on('data', (d: Buffer) => chunks.push(d))
    socket.on('error', () => undefined) // a reset after the answer is fine; no answer is caught below
    socket.on('close', () => {
      clearTimeout(timer)
      // Interim 100 Continue answers (to Expect: 100-continue) come before the real one.
      const text = Buffer.concat(chunks).toString('latin1').replace(/^(HTTP\/1\.1 100 Continue\r\n\r\n)+/, '')
      const match = /^HTTP\/1\.1 (\d{3}) [^\r]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(text)
      if (match === null) return resolve(`no HTTP answer: ${JSON.stringify(text.slice(0, 80))}`)
      const type = /^content-type: *([^\r]*)/im.exec(match[2]!)?.[1] ?? ''
      resolve({ status: Number(match[1]), type, body: match[3]! })
    })
    socket.write(bytes)
  })
}

/** What is wrong with the answer to a hostile case, or undefined. */
function judge(c: HostileCase, reply: Reply | string): string | undefined {
  if (typeof reply === 'string') return reply
  if (reply.status >= 500) return `status ${reply.status}: ${reply.body.slice(0, 120)}`
  if (c.expect === 'any') return undefined
  if (reply.status < 400) return `status ${reply.status}, expected a 4xx`
  if (reply.type.startsWith('application/json')) {
    let error: unknown
    try {
      error = (JSON.parse(reply.body) as { error?: unknown }).error
    } catch {
      return `status ${reply.status} with a body that is not JSON: ${reply.body.slice(0, 80)}`
    }
    const ollama = typeof error === 'string' && error !== ''
    const openai = typeof (error as { message?: unknown } | undefined)?.message === 'string'
    return ollama || openai ? undefined : `status ${reply.status} without an error message: ${reply.body.slice(0, 80)}`
  }
  // Ollama's router answers unknown paths and wrong methods itself, in plain text (gin).
  if (/^(404 page not found|405 method not allowed)$/.test(reply.body)) return undefined
  return `status ${reply.status} in neither shape: ${reply.type} ${reply.body.slice(0, 80)}`
}

/** Good traffic: each kind checks that its answer is whole. */
const GOOD: readonly ((url: string) => Promise<void>)[] = [
  async (url) => {
    const res = await request(`${url}/api/generate`, { method: 'POST', body: JSON.stringify({ model: 'llama3.2', prompt: 'good stream' }) })
    if (res.statusCode !== 200) throw new Error(`generate stream: ${res.statusCode}`)
    const lines = ndjson(await res.body.text())
    if (lines.at(-1)?.done !== true) throw new Error('generate stream: not done')
  },
  async (url) => {
    const res = await request(`${url}/api/chat`, {
      method: 'POST',
      body: JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: `good ${Math.random()}` }], stream: false }),
    })
    const body = (await res.body.json()) as { done?: boolean; message?: { content?: string } }
    if (res.statusCode !== 200 || body.done !== true || !body.message?.content) throw new Error(`chat: ${res.statusCode}`)
  },
  async (url) => {
    const res = await request(`${url}/api/embed`, { method: 'POST', body: JSON.stringify({ model: 'nomic-embed-text', input: ['good a', `good ${Math.random()}`] }) })
    const body = (await res.body.json()) as { embeddings?: number[][] }
    if (res.statusCode !== 200 || body.embeddings?.length !== 2 || body.embeddings[1]!.length !== 768) throw new Error(`embed: ${res.statusCode}`)
  },
  async (url) => {
    const res = await request(`${url}/api/tags`)
    const body = (await res.body.json()) as { models?: unknown[] }
    if (res.statusCode !== 200 || body.models?.length !== 2) throw new Error(`tags: ${res.statusCode}`)
  },
  async (url) => {
    const res = await request(`${url}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'good sse' }], stream: true }),
    })
    const text = await res.body.text()
    if (res.statusCode !== 200 || !text.endsWith('data: [DONE]\n\n')) throw new Error(`openai stream: ${res.statusCode}`)
  },
]

t.test('hostile requests at every route while good traffic runs', async (t) => {
  const seed = Number(process.env.CORRAL_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 32))
  t.comment(`seed ${seed} (CORRAL_FUZZ_SEED=${seed} reproduces this run)`)
  const a = await startFakeOllama({ name: 'a' })
  const b = await startFakeOllama({ name: 'b' })
  t.teardown(() => Promise.all([a.close(), b.close()]))
  const { url, corral, logs } = await startCorral(t, [a.url, b.url], {
    log: { level: 'warn' },
    server: { headers_timeout: '1s', request_timeout: '2s', max_header_size: HEADER_BYTES, max_requests_per_client: 1000 },
    limits: { max_body_size: { generation: BODY_BYTES, embedding: BODY_BYTES, model: BODY_BYTES, other: BODY_BYTES, upload: BODY_BYTES } },
  })
  const port = Number(new URL(url).port)

  let fuzzing = true
  const goodFailures: string[] = []
  let goodDone = 0
  const good = Array.from({ length: 3 }, async (_, worker) => {
    for (let i = worker; fuzzing || i < worker + GOOD.length; i++) {
      try {
        await GOOD[i % GOOD.length]!(url)
        goodDone++
      } catch (err) {
        goodFailures.push(String(err))
      }
    }
  })

  const rnd = new Random(seed)
  const cases = Array.from({ length: CASES }, () => hostileCase(rnd, { bodyBytes: BODY_BYTES, headerBytes: HEADER_BYTES }))
  const problems: string[] = []
  const seen = new Map<string, number>()
  const startedAt = performance.now()
  let next = 0
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < cases.length) {
        const c = cases[next++]!
        const reply = await exchange(port, c.bytes)
        const key = typeof reply === 'string' ? 'none' : String(reply.status)
        seen.set(key, (seen.get(key) ?? 0) + 1)
        const problem = judge(c, reply)
        if (problem !== undefined) problems.push(`${c.name}: ${problem}`)
      }
    }),
  )
  fuzzing = false
  await Promise.all(good)
  const answers = [...seen].sort().map(([status, n]) => `${status}: ${n}`).join(', ')
  t.comment(`${CASES} cases in ${Math.round(performance.now() - startedAt)} ms; answers ${answers}; ${goodDone} good requests alongside`)

  t.same(problems, [], `every one of ${CASES} hostile requests got its answer`)
  t.same(goodFailures, [], 'no good request failed')
  t.ok(goodDone >= 3 * GOOD.length, `good requests ran alongside (${goodDone})`)
  t.same(logs.filter((l) => l.msg === 'unexpected error'), [], 'no internal error')
  await corral.proxy.whenIdle()
  await corral.perClient.whenInFlightAtMost(0)
  t.equal(corral.perClient.clients, 0, 'every per-client slot came back')
  await Promise.all([a.waitUntil((f) => f.inFlight === 0), b.waitUntil((f) => f.inFlight === 0)])
  t.equal((await request(`${url}/healthz`)).statusCode, 200, 'corral still serves')
})
