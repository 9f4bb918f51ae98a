import t from 'tap'
import { LeastInflightPolicy } from '../../src/balancer/least-inflight.js'
import { allEligible, syntheticFleet } from '../fixtures/synthetic-fleet.js'


t.test('the instance with the fewest requests in flight wins', async (t) => {
  const cases: [string, number[], number[], string][] = [
    ['plain minimum', [3, 1, 2], [1, 1, 1], 'i1'],
    ['relative to weight: 4/4 beats 2/1', [2, 4], [1, 4], 'i1'],
    ['relative to weight: 1/1 beats 3/2', [3, 1], [2, 1], 'i1'],
  ]
  for (const [name, inFlight, weights, expected] of cases) {
    const instances = syntheticFleet(t, weights.map((weight) => ({ weight })))
    inFlight.forEach((n, i) => (instances[i]!.inFlight = n))
    t.equal(new LeastInflightPolicy().pick(instances, allEligible(instances))?.name, expected, name)
  }
})

t.test('ties rotate, so idle instances share the work', async (t) => {
  const policy = new LeastInflightPolicy()
  const instances = syntheticFleet(t, [{}, {}, {}])
  const mask = allEligible(instances)
  t.same([1, 2, 3, 4, 5, 6].map(() => policy.pick(instances, mask)?.name), ['i0', 'i1', 'i2', 'i0', 'i1', 'i2'])
})

t.test('instances that are not eligible are passed over', async (t) => {
  const policy = new LeastInflightPolicy()
  const instances = syntheticFleet(t, [{}, {}, {}])
  instances[2]!.inFlight = 1
  t.equal(policy.pick(instances, allEligible(instances, [instances[0]!])), instances[1], 'i0 excluded, i1 is idle')
  t.equal(policy.pick(instances, allEligible(instances, [instances[0]!, instances[1]!])), instances[2])
  t.equal(policy.pick(instances, allEligible(instances, instances)), undefined)
  t.equal(policy.pick([], new Uint8Array(0)), undefined, 'no instances at all')
})
