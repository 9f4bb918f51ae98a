/**
 * `Balancer.reconfigure` on real Instance objects whose pools are never used: instances matched
 * by name, a removed one closed only when its last request is released, queued requests placed
 * on the new fleet, sessions never sent to a removed instance, health of a removed instance
 * ignored, the policy switched live.
 */
import t, { type Test } from 'tap'
import { Balancer, type AttemptReport, type BalancedRequest } from '../../src/balancer/balancer.js'
import type { Instance } from '../../src/balancer/instance.js'
import type { Config } from '../../src/config/config.js'
import { configFromObject } from '../../src/config/load-config.js'
import { createLogger } from '../../src/observability/logger.js'

function config(names: string[], raw: Record<string, unknown> = {}): Config {
  return configFromObject({
    instances: names.map((name, i) => ({ name, url: `http://127.0.0.1:${9 + i}`, max_concurrency: 1 })),
    ...raw,
  }).config
}

function balancer(t: Test, names: string[], raw: Record<string, unknown> = {}): Balancer {
  const b = new Balancer(config(names, raw), { logger: createLogger('silent') })
  t.teardown(() => b.destroy())
  return b
}

function request(affinityKey?: string): BalancedRequest {
  return { work: 'generation', modelKey: undefined, maxTokens: undefined, affinityKey, fallback: false, upstream: undefined, slot: -1, level: 0 }
}

const SUCCESS: AttemptReport = { outcome: 'success', failureReason: undefined, failureKind: undefined, ok: true, streamed: true, ttfbMs: 40, totalMs: 400, evalCount: 36, evalMs: 360 }
const FAILURE: AttemptReport = { ...SUCCESS, outcome: 'failure', failureReason: 'connection refused', failureKind: 'refused', ok: false }

t.test('instances are matched by name and url: kept (renumbered), added, retired', async (t) => {
  const fleet = (entries: [string, number][]): Config =>
    configFromObject({ instances: entries.map(([name, port]) => ({ name, url: `http://127.0.0.1:${port}` })) }).config
  const b = new Balancer(fleet([['a', 9], ['b', 10], ['c', 11]]), { logger: createLogger('silent') })
  t.teardown(() => b.destroy())
  const [a, bb, c] = b.instances as Instance[]
  const change = b.reconfigure(fleet([['c', 11], ['d', 12], ['a', 13]]))
  t.same(change.added.map((i) => i.name), ['d', 'a'], 'a new name, and a known name at a new url')
  t.same(change.removed.map((i) => i.name).sort(), ['a', 'b'])
  t.equal(b.instances[0], c, 'c is kept, the same object')
  t.same(b.instances.map((i) => i.index), [0, 1, 2], 'positions follow the new order')
  t.ok(a!.retired && bb!.retired && !c!.retired)
  await b.retired()
  t.ok(a!.pool.closed && bb!.pool.closed, 'idle removed instances close at once')
})

t.test('an instance removed with a request in flight closes when that request is released', async (t) => {
  const b = balancer(t, ['a', 'b'], { balancer: { policy: 'round-robin' } })
  const first = request()
  const a = (await b.acquire(first, undefined))!
  t.equal(a.name, 'a')
  const urlOfB = b.instances[1]!.url
  const change = b.reconfigure(configFromObject({ instances: [{ name: 'b', url: urlOfB, max_concurrency: 1 }] }).config)
  t.same(change.removed, [a])
  t.same(change.added, [], 'b is kept')
  t.notOk(a.pool.closed, 'still carrying a request')
  let retired = false
  const done = b.retired().then(() => (retired = true))
  t.equal((await b.acquire(request(), undefined))!.name, 'b', 'new requests go to b')
  t.notOk(retired)
  b.release(a, first, SUCCESS)
  await done
  t.ok(a.pool.closed, 'closed once its request ended')
  t.equal(a.inFlight, 0)
})

t.test('a queued request is placed on an instance the reload adds', async (t) => {
  const b = balancer(t, ['a'])
  const url = b.instances[0]!.url
  const first = request()
  const a = (await b.acquire(first, undefined))!
  const queued = b.acquire(request(), undefined)
  t.type(queued, Promise, 'a is full: the request waits')
  b.reconfigure(
    configFromObject({ instances: [{ name: 'a', url, max_concurrency: 1 }, { name: 'n', url: 'http://127.0.0.1:19', max_concurrency: 1 }] }).config,
  )
  t.equal((await queued)!.name, 'n', 'placed at once on the new instance')
  t.equal(b.queueDepth, 0)
  b.release(a, first, SUCCESS)
})

t.test('a session is never sent to a removed instance; its failures no longer count', async (t) => {
  const b = balancer(t, ['a', 'b'], { balancer: { policy: 'round-robin', affinity: { header: 'x-session' } } })
  const r = request('h:s1')
  const gone = (await b.acquire(r, undefined))!
  b.release(gone, r, SUCCESS)
  const held = request('h:s1')
  t.equal(await b.acquire(held, undefined), gone, 'the session sticks to its instance')
  const keep = b.instances.find((i) => i !== gone)!
  b.reconfigure(configFromObject({ instances: [{ name: keep.name, url: keep.url, max_concurrency: 1 }] }).config)
  t.equal(await b.acquire(request('h:s1'), undefined), keep, 'the session moves to a live instance')
  const errors = b.errors
  b.release(gone, held, FAILURE)
  t.equal(b.errors, errors, 'a failure on a retired instance is not counted')
  t.equal(gone.penalty.valueAt(Date.now()), 0, 'nor penalised')
  await b.retired()
  t.ok(gone.pool.closed)
})

t.test('the policy and the weights change live', async (t) => {
  const b = balancer(t, ['a', 'b'])
  t.equal(b.policy.name, 'load-score')
  const [a, bb] = b.instances as Instance[]
  b.reconfigure(
    configFromObject({
      instances: [
        { name: 'a', url: a!.url, weight: 3, max_concurrency: 2 },
        { name: 'b', url: bb!.url },
      ],
      balancer: { policy: 'round-robin' },
    }).config,
  )
  t.equal(b.policy.name, 'round-robin')
  t.equal(b.instances[0], a, 'kept')
  t.match(a, { weight: 3, maxConcurrency: 2 })
  t.equal(a!.expectedEnds.length, 4, 'slot cells follow the cap (both kinds of work)')
})
