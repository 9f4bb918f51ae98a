import type { InstanceConfig } from '../config/config.js'
import { Instance, type PoolOptions } from './instance.js'
import { policies, type PolicyName } from './policies.js'
import type { SelectionPolicy } from './selection-policy.js'

/**
 * The set of instances and the policy that chooses among them. It owns the instances (and so
 * their connection pools) and closes them.
 */
export class Balancer {
  readonly instances: readonly Instance[]
  readonly policy: SelectionPolicy

  constructor(configs: readonly InstanceConfig[], policy: PolicyName, pool: PoolOptions) {
    this.instances = configs.map((config, i) => new Instance(i, config, pool))
    this.policy = policies[policy](this.instances.length)
  }

  /** The instance for the next attempt, skipping those already tried; undefined when none can take it. */
  pick(skip: ReadonlySet<Instance> | undefined): Instance | undefined {
    return this.policy.pick(this.instances, skip)
  }

  /**
   * The digest of `model` as discovered on the instances (`/api/tags`), or undefined when it is
   * not known yet. Cache keys include it, so a re-pulled model never serves stale answers.
   */
  digestOf(_model: string): string | undefined {
    return undefined
  }

  async close(): Promise<void> {
    await Promise.all(this.instances.map((i) => i.close()))
  }

  async destroy(): Promise<void> {
    await Promise.all(this.instances.map((i) => i.destroy()))
  }
}
