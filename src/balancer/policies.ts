import { LeastInflightPolicy } from './least-inflight.js'
import { RoundRobinPolicy } from './round-robin.js'
import type { SelectionPolicy } from './selection-policy.js'

/** Config name -> factory. Adding a policy means one class and one line here. */
export const policies = {
  'round-robin': (instanceCount: number): SelectionPolicy => new RoundRobinPolicy(instanceCount),
  'least-inflight': (): SelectionPolicy => new LeastInflightPolicy(),
} as const satisfies Record<string, (instanceCount: number) => SelectionPolicy>

export type PolicyName = keyof typeof policies

/** Names accepted by `balancer.policy`, for the config schema. */
export const policyNames = Object.keys(policies) as [PolicyName, ...PolicyName[]]
