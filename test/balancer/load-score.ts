/**
 * The load score on synthetic instances (no network): every term of the score moves the choice
 * the way it should, ties and instances without data rotate, failures never make an instance
 * more attractive.
 */
import t from 'tap'
import type { Instance } from '../../src/balancer/instance.js'
import { LoadScorePolicy } from '../../src/balancer/load-score.js'
import { allEligible, syntheticFleet } from '../fixtures/synthetic-fleet.js'

const GEN = { work: 'generation', modelKey: 'llama3.2:latest', maxTokens: undefined } as const
const EMBED = { work: 'embedding', modelKey: 'nomic-embed-text:latest', maxTokens: undefined } as const

function policy(expectedTokens = 100, coldModelPenaltyMs = 5000): LoadScorePolicy {
  return new LoadScorePolicy({ coldModelPenaltyMs, expectedTokens: () => expectedTokens })
}

/** Gives an instance measured generation timings. */
function measured(instance: Instance, ttfbMs: number, msPerToken: number, now = 0): void {
  instance.timing.generation.ttfbMs.update(ttfbMs, now)
  instance.timing.generation.msPerToken.update(msPerToken, now)
}

t.test('each term of the score moves the choice', async (t) => {
  type Setup = (fleet: Instance[]) => void
  const cases: [string, Setup, string][] = [
    ['slower generation speed loses', (f) => (measured(f[0]!, 50, 30), measured(f[1]!, 50, 10)), 'i1'],
    ['longer time to first byte loses', (f) => (measured(f[0]!, 50, 10), measured(f[1]!, 900, 10)), 'i0'],
    ['work in flight counts', (f) => (measured(f[0]!, 50, 10), measured(f[1]!, 50, 10), (f[0]!.inFlight = 2)), 'i1'],
    [
      'a 3x slower instance still wins when the fast one is 3 slots deep',
      (f) => (measured(f[0]!, 50, 10), measured(f[1]!, 150, 30), (f[0]!.inFlight = 12)),
      'i1',
    ],
    ['the model loaded beats a cold load', (f) => ((f[0]!.loaded = new Set(['other:latest'])), (f[1]!.loaded = new Set([GEN.modelKey]))), 'i1'],
    ['a recent failure loses', (f) => f[0]!.penalty.add(5000, 0), 'i1'],
  ]
  for (const [name, setup, expected] of cases) {
    const fleet = syntheticFleet(t, [{}, {}])
    setup(fleet)
    t.equal(policy().pick(fleet, allEligible(fleet), GEN, 0)?.name, expected, name)
  }
  const weighted = syntheticFleet(t, [{ weight: 1 }, { weight: 4 }])
  measured(weighted[0]!, 50, 10)
  measured(weighted[1]!, 50, 10)
  weighted[1]!.inFlight = 3
  t.equal(policy().pick(weighted, allEligible(weighted), GEN, 0)?.name, 'i1', 'weight 4 with 3 in flight beats weight 1 idle')
})

t.test('timings are kept per request type', async (t) => {
  const fleet = syntheticFleet(t, [{}, {}])
  // i0 generates slowly but embeds fast; i1 the other way round.
  measured(fleet[0]!, 50, 40)
  measured(fleet[1]!, 50, 5)
  fleet[0]!.timing.embedding.ttfbMs.update(10, 0)
  fleet[1]!.timing.embedding.ttfbMs.update(80, 0)
  const p = policy()
  t.equal(p.pick(fleet, allEligible(fleet), GEN, 0)?.name, 'i1')
  t.equal(p.pick(fleet, allEligible(fleet), EMBED, 0)?.name, 'i0')
})

t.test('exact ties and a fleet with no data rotate like round-robin', async (t) => {
  const fleet = syntheticFleet(t, [{}, {}, {}])
  const p = policy()
  const mask = allEligible(fleet)
  t.same([0, 1, 2, 3, 4, 5].map(() => p.pick(fleet, mask, GEN, 0)?.name), ['i0', 'i1', 'i2', 'i0', 'i1', 'i2'])
})

t.test('an instance without data is given the fleet mean: tried, not avoided', async (t) => {
  const fleet = syntheticFleet(t, [{}, {}, {}])
  measured(fleet[0]!, 50, 10)
  measured(fleet[1]!, 50, 30)
  const p = policy()
  // Mean service (50 + 100x10 + 50 + 100x30) / 2 = 2050: i2 (no data) beats i1 (3050), not i0 (1050).
  t.equal(p.score(fleet[2]!, GEN, 0, fleet), 2050)
  t.equal(p.pick(fleet, allEligible(fleet, [fleet[0]!]), GEN, 0)?.name, 'i2')
  t.equal(p.pick(fleet, allEligible(fleet), GEN, 0)?.name, 'i0')
})

t.test('a fast error makes an instance less attractive, never more, and the penalty decays', async (t) => {
  const fleet = syntheticFleet(t, [{}, {}])
  measured(fleet[0]!, 100, 10)
  measured(fleet[1]!, 100, 10)
  const p = policy()
  const before = p.score(fleet[0]!, GEN, 0, fleet)
  fleet[0]!.penalty.add(5000, 0)
  t.ok(p.score(fleet[0]!, GEN, 0, fleet) > before, 'a failure raises the score')
  t.equal(p.pick(fleet, allEligible(fleet), GEN, 0)?.name, 'i1')
  // Even with the other instance busy, a just-failed instance is not preferred...
  fleet[1]!.inFlight = 2
  t.equal(p.pick(fleet, allEligible(fleet), GEN, 1000)?.name, 'i1')
  // ...but after a minute the penalty has decayed (time constant 10 s) and it is back.
  t.equal(p.pick(fleet, allEligible(fleet), GEN, 60_000)?.name, 'i0')
  t.ok(fleet[0]!.penalty.valueAt(60_000) < 20, 'penalty nearly gone after 6 time constants')
})

t.test('slow start: a just-recovered instance takes a fraction of its weight', async (t) => {
  const fleet = syntheticFleet(t, [{}, {}])
  measured(fleet[0]!, 100, 10)
  measured(fleet[1]!, 100, 10)
  fleet[1]!.inFlight = 3
  // i0 recovers at t=1000 (two failed checks, then one passed).
  fleet[0]!.health.onCheck(false, 0, 'down')
  fleet[0]!.health.onCheck(false, 0, 'down')
  fleet[0]!.health.onCheck(true, 1000)
  const p = policy()
  t.equal(fleet[0]!.health.weightFactor(1000), 0.1)
  t.equal(p.pick(fleet, allEligible(fleet), GEN, 1000)?.name, 'i1', 'at 10% weight it loses to a busy peer')
  t.equal(fleet[0]!.health.weightFactor(31_000), 1)
  t.equal(p.pick(fleet, allEligible(fleet), GEN, 31_000)?.name, 'i0', 'after slow_start it is back at full weight')
})

t.test('the peak-EWMA jumps up at once and comes down with time', async (t) => {
  const fleet = syntheticFleet(t, [{}])
  const ewma = fleet[0]!.timing.generation.msPerToken
  ewma.update(10, 0)
  ewma.update(60, 100)
  t.equal(ewma.value, 60, 'a slower sample is taken at once')
  ewma.update(10, 200)
  t.ok(ewma.value > 59, 'one fast sample 100 ms later barely moves it')
  ewma.update(10, 200_000)
  t.ok(ewma.value < 11, 'long after, fast samples win')
})

t.test('place: waiting for a fast full instance can beat a slow free one, until the queue grows', async (t) => {
  const fleet = syntheticFleet(t, [{ maxConcurrency: 2 }, { maxConcurrency: 2 }])
  const [fast, slow] = fleet as [Instance, Instance]
  measured(fast, 40, 8)
  measured(slow, 120, 24)
  // fast has both slots busy, the first expected to free in 100 ms; slow is idle.
  fast.inFlight = 2
  fast.holdSlot(100)
  fast.holdSlot(300)
  const mask = new Uint8Array([3, 1]) // FULL, ELIGIBLE
  const p = policy(35)
  const job = (maxTokens: number | undefined) => ({ work: 'generation', modelKey: undefined, maxTokens }) as const
  // Average job (35 tokens): fast 320 ms after a 100 ms wait, counted twice for those behind
  // (100 + 640 = 740) beats slow's 960.
  t.equal(p.place(fleet, mask, job(undefined), 0, 0), 'wait')
  // Ten requests queued ahead: a slot frees every 160 ms, so waiting costs 1600 ms more.
  t.equal(p.place(fleet, mask, job(undefined), 0, 10), slow)
  // A short job (10 tokens) is cheap on the slow instance: 360 ms vs 100 + 240 + one queued (160).
  t.equal(p.place(fleet, mask, job(10), 0, 1), slow)
  t.equal(p.place(fleet, mask, job(10), 0, 0), 'wait', 'with nobody ahead it still waits (340 < 360)')
  t.equal(p.pick(fleet, mask, job(undefined), 0), slow, 'pick never waits: only free instances')
  t.equal(fast.nextFreeInMs(50), 50)
  t.equal(fast.nextFreeInMs(400), 300, 'a request 300 ms overdue counts as 300 ms away (a hung one repels waiters)')
  t.equal(p.place(fleet, mask, job(undefined), 2000, 0), slow, 'long overdue: the slow free instance wins')
})

t.test('estimates age when read: a quiet instance once slow comes back into rotation', async (t) => {
  const fleet = syntheticFleet(t, [{}, {}, {}])
  const p = policy()
  // i0 was slow a while ago; i1 and i2 answer now.
  measured(fleet[0]!, 400, 40, 0)
  measured(fleet[1]!, 50, 10, 60_000)
  measured(fleet[2]!, 50, 10, 60_000)
  const picks = (now: number): Set<string> => {
    const seen = new Set<string>()
    for (let i = 0; i < 6; i++) seen.add(p.pick(fleet, allEligible(fleet), GEN, now)!.name)
    return seen
  }
  t.notOk(picks(60_000).has('i0'), 'slow a minute ago (two time constants): still avoided')
  t.ok(picks(60_000 + 150_000).has('i0'), 'left alone for five time constants more: tried again')
})

t.test('near-equal scores are ties and rotate', async (t) => {
  const fleet = syntheticFleet(t, [{}, {}, {}])
  measured(fleet[0]!, 50, 10)
  measured(fleet[1]!, 52, 10.3)
  measured(fleet[2]!, 49, 10.2)
  const p = policy()
  const counts = new Map<string, number>()
  for (let i = 0; i < 60; i++) {
    const name = p.pick(fleet, allEligible(fleet), GEN, 0)!.name
    counts.set(name, (counts.get(name) ?? 0) + 1)
  }
  t.same([...counts.keys()].sort(), ['i0', 'i1', 'i2'], 'each takes a share')
  for (const [name, n] of counts) t.ok(n >= 12 && n <= 28, `${name}: ${n} of 60`)
})
