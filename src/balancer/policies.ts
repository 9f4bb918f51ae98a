import { LeastInflightPolicy } from './least-inflight.js'
import { LoadScorePolicy, type LoadScoreOptions } from './load-score.js'
import { RoundRobinPolicy } from './round-robin.js'
import type { SelectionPolicy } from './selection-policy.js'

/** What a policy factory is given. */
export interface PolicyContext extends LoadScoreOptions {
  instanceCount: number
}

/** Config name -> factory. Adding a policy means one class and one line here. */
export const policies = {
  'load-score': (ctx: PolicyContext): SelectionPolicy => new LoadScorePolicy(ctx),
  'least-inflight': (): SelectionPolicy => new LeastInflightPolicy(),
  'round-robin': (ctx: PolicyContext): SelectionPolicy => new RoundRobinPolicy(ctx.instanceCount),
} as const satisfies Record<string, (ctx: PolicyContext) => SelectionPolicy>

export type PolicyName = keyof typeof policies

/** Names accepted by `balancer.policy`, for the config schema. */
export const policyNames = Object.keys(policies) as [PolicyName, ...PolicyName[]]
