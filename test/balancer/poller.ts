/**
 * The poll timing health checks and model discovery share: a round at start, rounds on the
 * interval, a running round shared, close waiting for it.
 */
import t from 'tap'
import { Poller } from '../../src/balancer/poller.js'
import { waitFor } from '../fixtures/wait-for.js'

/** A round that runs until the test lets it finish. */
function gatedRound(): { round: () => Promise<void>; rounds: () => number; finish: () => void } {
  let rounds = 0
  let release: (() => void) | undefined
  return {
    round: () => {
      rounds++
      return new Promise<void>((resolve) => (release = resolve))
    },
    rounds: () => rounds,
    finish: () => release?.(),
  }
}

t.test('start runs a round at once; a round asked for while one runs is the same round', async (t) => {
  const gate = gatedRound()
  const poller = new Poller(gate.round, 60_000)
  t.equal(poller.started, false)
  poller.start()
  t.equal(poller.started, true)
  t.equal(gate.rounds(), 1, 'the first round started with start')
  const first = poller.firstRound()
  t.equal(poller.run(), poller.run(), 'shared')
  t.equal(gate.rounds(), 1, 'not doubled')
  gate.finish()
  await first
  void poller.run()
  t.equal(gate.rounds(), 2, 'a new round once the last one ended')
  gate.finish()
  await poller.close()
})

t.test('rounds follow the interval, a new interval restarts the timer, close waits for the running round', async (t) => {
  let rounds = 0
  const poller = new Poller(async () => void rounds++, 60_000)
  poller.start()
  await poller.firstRound()
  t.equal(rounds, 1)
  poller.setInterval(5)
  await waitFor('two rounds on the new interval', () => rounds >= 3)
  const gate = gatedRound()
  const slow = new Poller(gate.round, 60_000)
  slow.start()
  let closed = false
  const closing = slow.close().then(() => (closed = true))
  await Promise.resolve()
  t.equal(closed, false, 'close waits while the round runs')
  gate.finish()
  await closing
  t.equal(slow.started, false)
  t.equal(slow.closed, true)
  await poller.close()
  const after = rounds
  slow.start()
  t.equal(gate.rounds(), 1, 'a closed poller does not start again')
  t.equal(rounds, after)
})
