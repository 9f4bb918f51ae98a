/**
 * Open loop: turns arrive as a Poisson process at `ratePerS` (exponential gaps from the seeded
 * PRNG) whether or not earlier ones have finished, as independent users do. Arrival times are
 * scheduled on an absolute clock, so timer lateness does not lower the rate: a late timer sends
 * every turn that was due. A slow target therefore sees requests pile up (up to the pool's
 * connections, then in the client queue, whose wait counts in latency), instead of the load
 * easing off the way a closed loop's does.
 */
import { performance } from 'node:perf_hooks'
import { setTimeout as sleep } from 'node:timers/promises'
import type { IssueBudget } from './issue-budget.js'
import { Prng } from './prng.js'
import type { RunRecorder } from './run-recorder.js'
import type { UserTurns } from './user-turn.js'

export async function runOpenLoop(
  turns: UserTurns,
  recorder: RunRecorder,
  ratePerS: number,
  seed: number,
  budget: IssueBudget,
  cancel: AbortSignal,
): Promise<void> {
  // Its own stream, apart from the question picker's, so --zipf does not change the arrivals.
  const rng = new Prng(seed ^ 0x9e3779b9)
  const meanGapMs = 1000 / ratePerS
  const running = new Set<Promise<void>>()
  let nextAt = performance.now() + rng.exponential(meanGapMs)
  for (;;) {
    const wait = nextAt - performance.now()
    if (wait > 0) {
      try {
        await sleep(wait, undefined, { signal: budget.signal })
      } catch {
        break
      }
    }
    if (!budget.take()) break
    const turn = turns.run(recorder, cancel)
    running.add(turn)
    void turn.then(() => running.delete(turn))
    nextAt += rng.exponential(meanGapMs)
  }
  await Promise.all(running)
}
