import t from 'tap'
import { RoundRobinPolicy } from '../../src/balancer/round-robin.js'
import type { Instance } from '../../src/balancer/instance.js'
import { allEligible, syntheticFleet } from '../fixtures/synthetic-fleet.js'


function picks(policy: RoundRobinPolicy, instances: Instance[], n: number, mask = allEligible(instances)): string {
  const out: string[] = []
  for (let i = 0; i < n; i++) out.push(policy.pick(instances, mask)?.name ?? '-')
  return out.join(' ')
}

t.test('equal weights rotate in order', async (t) => {
  const instances = syntheticFleet(t, [{}, {}, {}])
  t.equal(picks(new RoundRobinPolicy(3), instances, 6), 'i0 i1 i2 i0 i1 i2')
})

t.test('weights are honoured smoothly, without bursts', async (t) => {
  const instances = syntheticFleet(t, [{ weight: 2 }, { weight: 1 }])
  t.equal(picks(new RoundRobinPolicy(2), instances, 6), 'i0 i1 i0 i0 i1 i0')
  const five = syntheticFleet(t, [{ weight: 5 }, { weight: 1 }, { weight: 1 }])
  // nginx's smooth weighted round-robin: a a b a c a a for 5:1:1
  t.equal(picks(new RoundRobinPolicy(3), five, 7), 'i0 i0 i1 i0 i2 i0 i0')
})

t.test('instances that are not eligible are passed over; none eligible gives undefined', async (t) => {
  const instances = syntheticFleet(t, [{}, {}, {}])
  const policy = new RoundRobinPolicy(3)
  t.equal(picks(policy, instances, 4, allEligible(instances, [instances[1]!])), 'i0 i2 i0 i2')
  t.equal(policy.pick(instances, allEligible(instances, instances)), undefined, 'none left')
})
