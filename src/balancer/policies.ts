import { LeastInflightPolicy } from './least-inflight.js'
import { LoadScorePolicy, type LoadScoreOptions } from './load-score.js'
import { RoundRobinPolicy } from './round-robin.js'
import type { PolicyName } from '../config/policy-names.js'
import type { SelectionPolicy } from './selection-policy.js'

/** What a policy factory is given. */
export interface PolicyContext extends LoadScoreOptions {
  instanceCount: number
}

/** Config name -> factory. Adding a policy means one class, its name in config/policy-names.ts and one line here. */
export const policies = {
  'load-score': (ctx: PolicyContext): SelectionPolicy => new LoadScorePolicy(ctx),
  'least-inflight': (): SelectionPolicy => new LeastInflightPolicy(),
  'round-robin': (ctx: PolicyContext): SelectionPolicy => new RoundRobinPolicy(ctx.instanceCount),
} as const satisfies Record<PolicyName, (ctx: PolicyContext) => SelectionPolicy>
