import t from 'tap'
import { LeastInflightPolicy } from '../../src/balancer/least-inflight.js'
import type { Instance } from '../../src/balancer/instance.js'

/** Synthetic instances: selection reads only these fields, so no pools or sockets are needed. */
function fleet(inFlight: number[], weights: number[] = inFlight.map(() => 1), maxConcurrency = Infinity): Instance[] {
  return inFlight.map(
    (n, index) =>
      ({
        index,
        name: `i${index}`,
        weight: weights[index],
        inFlight: n,
        maxConcurrency,
        get full(): boolean {
          return (this as Instance).inFlight >= (this as Instance).maxConcurrency
        },
      }) as unknown as Instance,
  )
}

t.test('the instance with the fewest requests in flight wins', async (t) => {
  const cases: [string, number[], number[] | undefined, string][] = [
    ['plain minimum', [3, 1, 2], undefined, 'i1'],
    ['relative to weight: 4/4 beats 2/1', [2, 4], [1, 4], 'i1'],
    ['relative to weight: 1/1 beats 3/2', [3, 1], [2, 1], 'i1'],
  ]
  for (const [name, inFlight, weights, expected] of cases) {
    t.equal(new LeastInflightPolicy().pick(fleet(inFlight, weights), undefined)?.name, expected, name)
  }
})

t.test('ties rotate, so idle instances share the work', async (t) => {
  const policy = new LeastInflightPolicy()
  const instances = fleet([0, 0, 0])
  t.same([1, 2, 3, 4, 5, 6].map(() => policy.pick(instances, undefined)?.name), ['i0', 'i1', 'i2', 'i0', 'i1', 'i2'])
})

t.test('skipped and full instances are passed over', async (t) => {
  const policy = new LeastInflightPolicy()
  const instances = fleet([0, 5, 1], undefined, 5)
  t.equal(policy.pick(instances, new Set([instances[0]!])), instances[2], 'i1 is full, i0 was tried')
  t.equal(policy.pick(instances, new Set([instances[0]!, instances[2]!])), undefined)
  t.equal(policy.pick([], undefined), undefined, 'no instances at all')
})
