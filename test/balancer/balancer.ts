/**
 * The balancer's filters and queue on real Instance objects whose pools are never used: model
 * filter, health filter and the round-robin fallback, the concurrency cap and the FIFO queue
 * (handed to whichever instance frees first, bounded, timed out, cancellable), outcomes feeding
 * health and the score.
 */
import t, { type Test } from 'tap'
import { Balancer, type AttemptReport, type BalancedRequest } from '../../src/balancer/balancer.js'
import type { Instance } from '../../src/balancer/instance.js'
import { configFromObject } from '../../src/config/load-config.js'
import { CorralError } from '../../src/shared/errors.js'
import { createLogger } from '../../src/observability/logger.js'

function balancer(t: Test, raw: Record<string, unknown> = {}, count = 2): Balancer {
  const { config } = configFromObject({
    instances: Array.from({ length: count }, (_, i) => ({ url: `http://127.0.0.1:${9 + i}`, name: `i${i}`, max_concurrency: 1 })),
    ...raw,
  })
  const b = new Balancer(config, { logger: createLogger('silent') })
  t.teardown(() => b.destroy())
  return b
}

function request(modelKey: string | undefined = 'llama3.2:latest', work: BalancedRequest['work'] = 'generation'): BalancedRequest {
  return { work, modelKey, maxTokens: undefined, affinityKey: undefined, fallback: false, upstream: undefined, slot: -1, level: 0 }
}

const SUCCESS: AttemptReport = { outcome: 'success', failureReason: undefined, failureKind: undefined, ok: true, streamed: true, ttfbMs: 40, totalMs: 400, evalCount: 36, evalMs: 360 }
const FAILURE: AttemptReport = { ...SUCCESS, outcome: 'failure', failureReason: 'connection refused', failureKind: 'refused', ok: false }

async function acquired(value: Instance | undefined | Promise<Instance | undefined>): Promise<string | undefined> {
  return (await value)?.name
}

t.test('the cap: a full instance is skipped, and with all full the request waits for whichever frees first', async (t) => {
  const b = balancer(t, { balancer: { policy: 'round-robin' } })
  const first = request()
  const second = request()
  t.equal(await acquired(b.acquire(first, undefined)), 'i0')
  t.equal(await acquired(b.acquire(second, undefined)), 'i1', 'i0 is full')
  const third = b.acquire(request(), undefined)
  t.type(third, Promise, 'all full: the request waits')
  t.equal(b.queueDepth, 1)
  t.equal(b.queuedFor(b.instances[0]!), 1)
  b.release(b.instances[1]!, second, SUCCESS)
  t.equal(await acquired(third), 'i1', 'the instance that freed first takes it')
  t.equal(b.queueDepth, 0)
  t.same(b.instances.map((i) => i.inFlight), [1, 1], 'its slot is taken on hand-over')
})

t.test('the queue is bounded, times out, and a cancelled wait leaves it', async (t) => {
  const b = balancer(t, { balancer: { max_queue: 1, queue_timeout: '50ms' } }, 1)
  t.equal(await acquired(b.acquire(request(), undefined)), 'i0')
  const waiting = request()
  const queued = b.acquire(waiting, undefined)
  t.throws(() => b.acquire(request(), undefined), { code: 'CORRAL_QUEUE_FULL', status: 503 })
  const err = await (queued as Promise<unknown>).catch((e: unknown) => e)
  t.ok(err instanceof CorralError && err.code === 'CORRAL_QUEUE_TIMEOUT' && err.status === 503 && err.retryAfterSeconds === 5)
  t.equal(b.queueDepth, 0, 'the timed-out request left the queue')
  const leaving = request()
  const gone = b.acquire(leaving, undefined)
  leaving.upstream!.cancel()
  t.equal(await gone, undefined, 'cancelled: settles with no instance')
  t.equal(b.queueDepth, 0)
  t.equal(b.instances[0]!.inFlight, 1, 'no slot was taken for it')
})

t.test('model-aware: only instances that have the model; none has it: any, so Ollama answers 404', async (t) => {
  const b = balancer(t, { balancer: { policy: 'round-robin' } }, 3)
  b.instances[0]!.models = new Map([['llama3.2:latest', 'sha256:aa']])
  b.instances[1]!.models = new Map([['qwen3:8b', 'sha256:bb']])
  // i2 has not answered discovery yet: it may have anything.
  const names: (string | undefined)[] = []
  for (let i = 0; i < 4; i++) {
    const r = request('qwen3:8b')
    const instance = (await b.acquire(r, undefined))!
    names.push(instance.name)
    b.release(instance, r, SUCCESS)
  }
  t.same(names, ['i1', 'i2', 'i1', 'i2'], 'i0 lacks the model')
  b.instances[2]!.models = new Map()
  const lost = request('nothing:latest')
  t.ok(await b.acquire(lost, undefined), 'a model nobody has still goes somewhere')
  t.equal(b.digestOf('llama3.2'), 'sha256:aa', 'name and name:latest are one model')
  t.equal(b.digestOf('nothing'), undefined)
})

t.test('tried instances are not picked again; none left gives undefined', async (t) => {
  const b = balancer(t)
  const r = request()
  t.equal(await acquired(b.acquire(r, new Set([b.instances[0]!]))), 'i1')
  t.equal(b.acquire(request(), new Set(b.instances)), undefined)
})

t.test('failures feed passive health; no healthy instance falls back to round-robin over all', async (t) => {
  const b = balancer(t, { health: { eject_after: 2 } })
  for (const instance of b.instances) {
    for (let i = 0; i < 2; i++) {
      const r = request()
      const tried = new Set(b.instances.filter((x) => x !== instance))
      const got = (await b.acquire(r, tried))!
      t.equal(got, instance)
      b.release(got, r, FAILURE)
    }
  }
  t.same(b.instances.map((i) => i.health.state(Date.now())), ['ejected', 'ejected'])
  t.equal(b.errors, 4)
  t.same(b.ejections, [1, 1])
  const names: string[] = []
  for (let i = 0; i < 4; i++) {
    const r = request()
    const got = (await b.acquire(r, undefined))!
    t.ok(r.fallback, 'marked as a fallback')
    names.push(got.name)
    b.release(got, r, { ...SUCCESS, outcome: 'neutral' })
  }
  t.same(names, ['i0', 'i1', 'i0', 'i1'], 'round-robin over the ejected instances')
})

t.test('a success teaches the timings; the score then prefers the faster instance', async (t) => {
  const b = balancer(t, {}, 2)
  const slow = { ...SUCCESS, totalMs: 1240, evalMs: 1200, evalCount: 40 }
  const fast = { ...SUCCESS, totalMs: 240, evalMs: 200, evalCount: 40 }
  for (const [instance, report] of [[b.instances[0]!, slow], [b.instances[1]!, fast]] as const) {
    const r = request()
    const got = (await b.acquire(r, new Set(b.instances.filter((x) => x !== instance))))!
    b.release(got, r, report)
  }
  t.equal(b.instances[0]!.timing.generation.msPerToken.value, 30)
  t.equal(b.instances[1]!.timing.generation.msPerToken.value, 5)
  t.equal(b.instances[0]!.timing.generation.ttfbMs.value, 40, 'ttfb = duration - eval_duration')
  t.ok(b.scoreOf(b.instances[0]!)! > b.scoreOf(b.instances[1]!)!)
  const picks: string[] = []
  for (let i = 0; i < 3; i++) {
    const r = request()
    const got = (await b.acquire(r, undefined))!
    picks.push(got.name)
    b.release(got, r, fast)
  }
  t.same(picks, ['i1', 'i1', 'i1'])
})

t.test('affinity: a session stays on its instance while the score is within the tolerance', async (t) => {
  const b = balancer(t, { balancer: { affinity: { header: 'X-Session-Id', tolerance: 2 } } }, 2)
  t.equal(b.affinityKeyOf({ 'x-session-id': 'abc' }, undefined), 'h:abc')
  t.equal(b.affinityKeyOf({}, undefined), undefined)
  const session = (): BalancedRequest => ({ ...request(), affinityKey: 'h:abc' })
  const r1 = session()
  const first = (await b.acquire(r1, undefined))!
  b.release(first, r1, SUCCESS)
  const other = b.instances.find((i) => i !== first)!
  // The other instance is now slightly better (the first has a small failure penalty)...
  first.penalty.add(300, Date.now())
  const r2 = session()
  t.equal(await b.acquire(r2, undefined), first, 'within 2x of the best: the session stays')
  b.release(first, r2, SUCCESS)
  // ...then much worse.
  first.penalty.add(60_000, Date.now())
  const r3 = session()
  t.equal(await b.acquire(r3, undefined), other, 'far worse than the best: the session moves')
})

t.test('prefix affinity hashes the start of messages', async (t) => {
  const b = balancer(t, { balancer: { affinity: { prefix_bytes: 64 } } })
  const convo = [{ role: 'system', content: 'You answer questions about the handbook.' }, { role: 'user', content: 'hi' }]
  const a = b.affinityKeyOf({}, { messages: convo })
  const longer = b.affinityKeyOf({}, { messages: [...convo, { role: 'assistant', content: 'hello' }] })
  t.match(a, /^p:[0-9a-f]{8}$/)
  t.equal(a, longer, 'the same conversation, one turn later, has the same key')
  t.not(a, b.affinityKeyOf({}, { messages: [{ role: 'system', content: 'Another system prompt entirely, different.' }] }))
})

t.test('load-score waits for a fast full instance rather than take a slow free one, until the queue is long', async (t) => {
  const b = balancer(t, {}, 2)
  const [fast, slow] = b.instances as [Instance, Instance]
  const teach = async (instance: Instance, report: AttemptReport): Promise<void> => {
    const r = request()
    const got = (await b.acquire(r, new Set(b.instances.filter((x) => x !== instance))))!
    b.release(got, r, report)
  }
  await teach(fast, { ...SUCCESS, totalMs: 240, evalMs: 200, evalCount: 40 })
  await teach(slow, { ...SUCCESS, totalMs: 1240, evalMs: 1200, evalCount: 40 })
  const first = request()
  t.equal(await b.acquire(first, undefined), fast)
  const second = request()
  const waiting = b.acquire(second, undefined)
  t.type(waiting, Promise, 'the fast instance is full: waiting for it beats the slow one')
  t.equal(b.queueDepth, 1)
  t.equal(slow.inFlight, 0)
  const third = request()
  t.equal(await b.acquire(third, undefined), slow, 'with a queue as long as the slots it waits for, every free slot works')
  b.release(fast, first, SUCCESS)
  t.equal(await waiting, fast, 'the waiter gets the fast instance when it frees')
})
