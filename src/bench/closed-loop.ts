/**
 * Closed loop: `users` simulated users, each sending its next turn as soon as the last one
 * ended (no think time). Throughput is whatever the target sustains at that concurrency; the
 * offered load adapts to it, so latencies are those of a system at exactly `users` in flight.
 */
import type { IssueBudget } from './issue-budget.js'
import type { RunRecorder } from './run-recorder.js'
import type { UserTurns } from './user-turn.js'

export async function runClosedLoop(turns: UserTurns, recorder: RunRecorder, users: number, budget: IssueBudget, cancel: AbortSignal): Promise<void> {
  const user = async (): Promise<void> => {
    while (budget.take()) await turns.run(recorder, cancel)
  }
  await Promise.all(Array.from({ length: users }, user))
}
