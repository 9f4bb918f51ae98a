/**
 * Fault scenario: clients abort mid-stream in bulk. Fifty clients start long streamed generations
 * (more than the instances' slots, so some wait in corral's queue) and each hangs up after a
 * random number of lines; meanwhile other clients send a normal load. Every abandoned generation
 * is cancelled at its instance (the instance sees its client go), the bystanders all succeed, and
 * no counter, request or connection is left behind.
 */
import t from 'tap'
import { Agent, request } from 'undici'
import { runLoad } from '../fixtures/fault-load.js'
import { assertNoOpenSockets, assertSettled, startScene, within } from '../fixtures/fault-scene.js'

const ABORTERS = 50

/** A small seeded generator (mulberry32), so the abort points are the same on every run. */
function random(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** Streams a long generation and aborts after `lines` lines; resolves with the lines read. */
async function abortAfter(dispatcher: Agent, url: string, i: number, lines: number): Promise<number> {
  const controller = new AbortController()
  const res = await request(`${url}/api/generate`, {
    method: 'POST',
    body: JSON.stringify({ model: 'llama3.2', prompt: `abort-${i}` }),
    dispatcher,
    signal: controller.signal,
  })
  let seen = 0
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      for (const byte of chunk) if (byte === 0x0a) seen++
      if (seen >= lines) {
        controller.abort()
        break
      }
    }
  } catch {
    // the abort itself
  }
  return seen
}

t.test('50 clients abort streams at random points: every generation is cancelled upstream, bystanders unharmed', async (t) => {
  const scene = await startScene(t, { fake: { tokens: 60, tokenDelayMs: 5 } })
  const next = random(6)
  const points = Array.from({ length: ABORTERS }, () => 1 + Math.floor(next() * 25))
  const dispatcher = new Agent({ connections: ABORTERS })
  const [seen, bystanders] = await Promise.all([
    Promise.all(points.map((lines, i) => abortAfter(dispatcher, scene.url, i, lines))),
    runLoad('bystanders during bulk aborts', scene.url, { count: 40, concurrency: 8, tag: 'bystander' }),
  ])
  await dispatcher.close()
  t.ok(seen.every((n, i) => n >= points[i]!), 'each client read its lines, then hung up')
  t.equal(bystanders.ok, 40, 'every bystander request succeeded')
  const aborted = (): number => scene.fakes.reduce((n, f) => n + f.closedEarly, 0)
  const reached = (): number => scene.fakes.reduce((n, f) => n + f.requests.filter((r) => String((r.body as { prompt?: unknown })?.prompt).startsWith('abort-')).length, 0)
  t.equal(reached(), ABORTERS, 'every aborted generation had reached an instance once')
  // Every abandoned generation is cancelled at its instance: the fake sees its client go.
  await within(Promise.all(scene.fakes.map((f) => f.waitUntil(() => aborted() >= ABORTERS))), 'instances see the aborts')
  t.equal(aborted(), ABORTERS, 'the instances saw all 50 clients go')
  t.comment(`50 clients aborted after ${Math.min(...points)}-${Math.max(...points)} lines; instances saw ${aborted()} early closes`)
  await assertSettled(t, scene, bystanders)
})

assertNoOpenSockets(t)
