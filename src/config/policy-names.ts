/**
 * The names accepted by `balancer.policy`. The balancer maps each to its policy class
 * (balancer/policies.ts); the list lives here so the config schema needs nothing from above it.
 */
export const policyNames = ['load-score', 'least-inflight', 'round-robin'] as const

export type PolicyName = (typeof policyNames)[number]
