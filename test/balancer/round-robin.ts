import t from 'tap'
import { RoundRobinPolicy } from '../../src/balancer/round-robin.js'
import type { Instance } from '../../src/balancer/instance.js'

/** Synthetic instances: selection reads only these fields, so no pools or sockets are needed. */
function fleet(weights: number[], maxConcurrency = Infinity): Instance[] {
  return weights.map(
    (weight, index) =>
      ({
        index,
        name: `i${index}`,
        weight,
        inFlight: 0,
        maxConcurrency,
        get full(): boolean {
          return (this as Instance).inFlight >= (this as Instance).maxConcurrency
        },
      }) as unknown as Instance,
  )
}

function picks(policy: RoundRobinPolicy, instances: Instance[], n: number, skip?: Set<Instance>): string {
  const out: string[] = []
  for (let i = 0; i < n; i++) out.push(policy.pick(instances, skip)?.name ?? '-')
  return out.join(' ')
}

t.test('equal weights rotate in order', async (t) => {
  const instances = fleet([1, 1, 1])
  t.equal(picks(new RoundRobinPolicy(3), instances, 6), 'i0 i1 i2 i0 i1 i2')
})

t.test('weights are honoured smoothly, without bursts', async (t) => {
  const instances = fleet([2, 1])
  t.equal(picks(new RoundRobinPolicy(2), instances, 6), 'i0 i1 i0 i0 i1 i0')
  const five = fleet([5, 1, 1])
  // nginx's smooth weighted round-robin: a a b a c a a for 5:1:1
  t.equal(picks(new RoundRobinPolicy(3), five, 7), 'i0 i0 i1 i0 i2 i0 i0')
})

t.test('skipped (already tried) instances are passed over', async (t) => {
  const instances = fleet([1, 1, 1])
  const policy = new RoundRobinPolicy(3)
  t.equal(picks(policy, instances, 4, new Set([instances[1]!])), 'i0 i2 i0 i2')
  t.equal(policy.pick(instances, new Set(instances)), undefined, 'none left')
})

t.test('full instances are passed over; none eligible gives undefined', async (t) => {
  const instances = fleet([1, 1], 1)
  const policy = new RoundRobinPolicy(2)
  instances[0]!.inFlight = 1
  t.equal(picks(policy, instances, 3), 'i1 i1 i1')
  instances[1]!.inFlight = 1
  t.equal(policy.pick(instances, undefined), undefined)
})
