/**
 * Priority classes and fair shares in the balancer's queue, on real Instance objects whose pools
 * are never used and a clock the test moves: interactive waiters go before bulk ones, bulk leaves
 * the reserve free while interactive requests come, a bulk waiter is promoted after
 * bulk_max_wait (never starved), keys share a class by weight, and a reload changes the rules.
 */
import t, { type Test } from 'tap'
import { Balancer, type AttemptReport, type BalancedRequest } from '../../src/balancer/balancer.js'
import type { Instance } from '../../src/balancer/instance.js'
import type { PriorityClass } from '../../src/config/priority-class.js'
import { configFromObject } from '../../src/config/load-config.js'
import { createLogger } from '../../src/observability/logger.js'

interface Clock {
  ms: number
}

function configOf(slots: number, priority: Record<string, unknown>): ReturnType<typeof configFromObject>['config'] {
  return configFromObject({
    instances: [{ url: 'http://127.0.0.1:9', name: 'i0', max_concurrency: slots }],
    balancer: { policy: 'least-inflight', priority },
  }).config
}

function balancer(t: Test, slots: number, priority: Record<string, unknown>, clock: Clock): Balancer {
  const b = new Balancer(configOf(slots, priority), { logger: createLogger('silent'), now: () => clock.ms })
  t.teardown(() => b.destroy())
  return b
}

interface Tagged extends BalancedRequest {
  readonly label: string
}

function request(label: string, priority: PriorityClass, tenant = '', shareWeight = 1): Tagged {
  return { label, work: 'embedding', modelKey: undefined, maxTokens: undefined, affinityKey: undefined, fallback: false, upstream: undefined, slot: -1, level: 0, priority, tenant, shareWeight }
}

const SUCCESS: AttemptReport = { outcome: 'success', failureReason: undefined, failureKind: undefined, ok: true, streamed: false, ttfbMs: 20, totalMs: 20, evalCount: 0, evalMs: 0 }

/** Acquires for each request; records the labels in the order they get their slot. */
function queueAll(b: Balancer, requests: readonly Tagged[], served: string[]): void {
  for (const r of requests) {
    const got = b.acquire(r, undefined)
    if (got instanceof Promise) void got.then((i) => i !== undefined && served.push(r.label))
    else if (got !== undefined) served.push(r.label)
  }
}

/** Frees one slot held by `r` and lets the hand-over's promise callbacks run. */
async function releaseOne(b: Balancer, r: BalancedRequest): Promise<void> {
  b.release(b.instances[0] as Instance, r, SUCCESS)
  await Promise.resolve()
  await Promise.resolve()
}

t.test('an interactive request goes before bulk ones that waited longer', async (t) => {
  const clock = { ms: 1000 }
  const b = balancer(t, 1, { bulk_reserve: 0 }, clock)
  const served: string[] = []
  const all = [request('first', 'interactive'), request('bulk1', 'bulk'), request('bulk2', 'bulk'), request('query', 'interactive')]
  queueAll(b, all, served)
  t.same(served, ['first'])
  t.equal(b.queuedOf('bulk'), 2)
  t.equal(b.queuedOf('interactive'), 1)
  await releaseOne(b, all[0]!)
  t.same(served, ['first', 'query'], 'the freed slot goes to the interactive waiter')
  await releaseOne(b, all[3]!)
  t.same(served, ['first', 'query', 'bulk1'], 'then bulk, in order')
  t.equal(b.waits.byClass.interactive.queued, 1)
  t.equal(b.waits.byClass.bulk.queued, 1)
})

t.test('bulk leaves the reserve free while interactive requests come, and uses every slot when none do', async (t) => {
  const clock = { ms: 1000 }
  const b = balancer(t, 4, { bulk_reserve: 0.5 }, clock)
  const served: string[] = []
  const query = request('query', 'interactive')
  queueAll(b, [query], served)
  await releaseOne(b, query)
  const bulk = ['b1', 'b2', 'b3'].map((l) => request(l, 'bulk'))
  queueAll(b, bulk, served)
  t.same(served, ['query', 'b1', 'b2'], 'bulk takes 2 of 4 slots; the third batch waits')
  t.equal(b.instances[0]!.inFlight, 2)
  queueAll(b, [request('q2', 'interactive'), request('q3', 'interactive')], served)
  t.same(served.slice(3), ['q2', 'q3'], 'interactive requests find the reserved slots free')

  const idle = { ms: 1000 }
  const quiet = balancer(t, 4, { bulk_reserve: 0.5 }, idle)
  const only: string[] = []
  queueAll(quiet, ['c1', 'c2', 'c3', 'c4'].map((l) => request(l, 'bulk')), only)
  t.same(only, ['c1', 'c2', 'c3', 'c4'], 'no interactive request came: bulk gets the whole instance')
})

t.test('bulk is not starved under continuous interactive load: it is promoted after bulk_max_wait', async (t) => {
  const clock = { ms: 1000 }
  const b = balancer(t, 1, { bulk_reserve: 0, bulk_max_wait: '100ms' }, clock)
  const served: string[] = []
  let holder = request('q0', 'interactive')
  queueAll(b, [holder, request('batch', 'bulk')], served)
  // Every round an interactive request is waiting when the slot frees.
  for (let round = 1; round <= 8 && !served.includes('batch'); round++) {
    const next = request(`q${round}`, 'interactive')
    queueAll(b, [next], served)
    clock.ms += 20
    await releaseOne(b, holder)
    const last = served[served.length - 1]!
    holder = last === 'batch' ? request('batch', 'bulk') : next
    if (last === 'batch') {
      t.ok(clock.ms - 1000 >= 100, `served once it had waited bulk_max_wait (${clock.ms - 1000} ms)`)
    }
  }
  t.ok(served.includes('batch'), 'the batch got a slot while interactive requests kept coming')
  t.ok(served.indexOf('batch') >= 5, 'interactive requests went first until then')
})

t.test('keys share a class fairly, by weight', async (t) => {
  const clock = { ms: 1000 }
  const b = balancer(t, 1, { bulk_reserve: 0 }, clock)
  const served: string[] = []
  const first = request('x', 'bulk', 'flood')
  const flood = Array.from({ length: 6 }, (_, i) => request(`f${i}`, 'bulk', 'flood'))
  const other = [request('o0', 'bulk', 'other'), request('o1', 'bulk', 'other')]
  queueAll(b, [first, ...flood, ...other], served)
  const byLabel = new Map([first, ...flood, ...other].map((r) => [r.label, r]))
  while (served.length < 9) await releaseOne(b, byLabel.get(served[served.length - 1]!)!)
  t.same(served, ['x', 'f0', 'o0', 'f1', 'o1', 'f2', 'f3', 'f4', 'f5'], 'the other key alternates with the flood instead of waiting behind it')

  const weighted = balancer(t, 1, { bulk_reserve: 0 }, clock)
  const order: string[] = []
  const heavy = Array.from({ length: 6 }, (_, i) => request(`h${i}`, 'interactive', 'heavy', 2))
  const light = Array.from({ length: 3 }, (_, i) => request(`l${i}`, 'interactive', 'light', 1))
  const head = request('x', 'interactive', 'light')
  queueAll(weighted, [head, ...heavy, ...light], order)
  const all = new Map([head, ...heavy, ...light].map((r) => [r.label, r]))
  while (order.length < 10) await releaseOne(weighted, all.get(order[order.length - 1]!)!)
  t.same(order.slice(1, 7), ['h0', 'h1', 'l0', 'h2', 'h3', 'l1'], 'weight 2 gets two turns for one')
})

t.test('a reload changes the priority rules at once', async (t) => {
  const clock = { ms: 1000 }
  const b = balancer(t, 4, { bulk_reserve: 0 }, clock)
  const served: string[] = []
  const query = request('query', 'interactive')
  queueAll(b, [query], served)
  await releaseOne(b, query)
  const batches = ['b1', 'b2'].map((l) => request(l, 'bulk'))
  queueAll(b, batches, served)
  b.reconfigure(configOf(4, { bulk_reserve: 0.5, bulk_batch_size: 4 }))
  t.equal(b.priorityRules.bulkBatchSize, 4)
  queueAll(b, [request('b3', 'bulk')], served)
  t.same(served, ['query', 'b1', 'b2'], 'with the new reserve, a third batch waits')
  b.reconfigure(configOf(4, { bulk_reserve: 0 }))
  await releaseOne(b, batches[0]!)
  t.same(served, ['query', 'b1', 'b2', 'b3'], 'the reserve gone, the waiting batch is placed')
})
