/**
 * Fault scenario: a thundering herd on a cold cache. Two hundred identical requests arrive at
 * once (non-streamed, then streamed) while the instances answer slowly (latency in the fault
 * proxies): single flight sends one of them to an instance, and all two hundred get the same
 * answer; no counter, request or connection is left behind.
 */
import t from 'tap'
import { Agent } from 'undici'
import { sendOne, Tally, type LoadKind } from '../fixtures/fault-load.js'
import { assertNoOpenSockets, assertSettled, startScene } from '../fixtures/fault-scene.js'

const HERD = 200

async function herd(url: string, kind: LoadKind): Promise<Tally> {
  const dispatcher = new Agent({ connections: HERD })
  const tally = new Tally(`thundering herd (${kind})`)
  try {
    const answers = await Promise.all(Array.from({ length: HERD }, () => sendOne(dispatcher, url, kind, 'herd', 15_000)))
    answers.forEach((a, index) => {
      tally.sent++
      tally.record({ index, ...a })
    })
  } finally {
    await dispatcher.close()
  }
  return tally
}

/** The part of an answer that must be identical: the text (NDJSON: every line's), not timings. */
function text(body: string | undefined): string {
  return (body ?? '')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const o = JSON.parse(l) as { response?: string; message?: { content?: string }; done?: boolean }
      return `${o.response ?? o.message?.content ?? ''}${o.done === true ? '|done' : ''}`
    })
    .join('')
}

t.test('200 identical requests on a cold cache reach an instance once; all get the same answer', async (t) => {
  const scene = await startScene(t, { config: { cache: { enabled: true } } })
  for (const p of scene.proxies) await p.set({ latencyMs: 40 })
  const upstream = (path: string): number => scene.fakes.reduce((n, f) => n + f.count(path), 0)

  const plain = await herd(scene.url, 'generate')
  t.comment(plain.line())
  t.equal(plain.ok, HERD, 'every request answered')
  t.equal(upstream('/api/generate'), 1, 'one request reached an instance')
  t.equal(new Set(plain.answers.map((a) => text(a.body))).size, 1, 'one answer for all')

  const streamed = await herd(scene.url, 'chat-stream')
  t.comment(streamed.line())
  t.equal(streamed.ok, HERD, 'every stream complete')
  t.equal(upstream('/api/chat'), 1, 'one stream reached an instance')
  t.equal(new Set(streamed.answers.map((a) => text(a.body))).size, 1, 'the same text in every stream')
  const report = scene.corral.cache!.report()
  t.comment(`cache: ${report.hits} hits, ${report.misses} misses, ${report.coalesced} coalesced`)
  t.equal(report.hits + report.coalesced, 2 * HERD - 2, 'all but the two leaders were answered by the cache or the flight')
  for (const p of scene.proxies) await p.heal()
  await assertSettled(t, scene)
})

assertNoOpenSockets(t)
