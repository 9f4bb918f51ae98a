/**
 * The per-instance gauges (up, in flight, learned concurrency, queue depth, score), read from the
 * balancer at each scrape: an instance a reload removed disappears from them.
 */
import { Gauge, type Registry } from 'prom-client'
import type { Balancer } from '../balancer/balancer.js'

export function registerInstanceGauges(registers: Registry[], balancer: Balancer): void {
  new Gauge({
    name: 'corral_instance_up',
    help: '1 when the instance takes traffic (healthy or half-open), 0 when unhealthy or ejected.',
    labelNames: ['instance'],
    registers,
    collect() {
      const now = Date.now()
      this.reset()
      for (const instance of balancer.instances) {
        const state = instance.health.state(now)
        this.labels(instance.name).set(state === 'healthy' || state === 'half_open' ? 1 : 0)
      }
    },
  })
  new Gauge({
    name: 'corral_instance_in_flight',
    help: 'Requests an instance is working on now.',
    labelNames: ['instance'],
    registers,
    collect() {
      this.reset()
      for (const instance of balancer.instances) this.labels(instance.name).set(instance.inFlight)
    },
  })
  new Gauge({
    name: 'corral_instance_learned_concurrency',
    help: 'Requests of one kind of work (generation, embedding) the instance takes at once: the limit corral learned, or max_concurrency when set.',
    labelNames: ['instance', 'work'],
    registers,
    collect() {
      this.reset()
      for (const instance of balancer.instances) {
        this.labels(instance.name, 'generation').set(instance.slots('generation'))
        this.labels(instance.name, 'embedding').set(instance.slots('embedding'))
      }
    },
  })
  new Gauge({
    name: 'corral_instance_queue_depth',
    help: 'Requests waiting in corral for a free instance slot.',
    registers,
    collect() {
      this.set(balancer.queueDepth)
    },
  })
  new Gauge({
    name: 'corral_instance_score',
    help: 'Predicted finish time of a new generation on the instance, in seconds (load-score policy only; lower is picked first).',
    labelNames: ['instance'],
    registers,
    collect() {
      this.reset()
      for (const instance of balancer.instances) {
        const ms = balancer.scoreOf(instance)
        if (ms !== undefined) this.labels(instance.name).set(ms / 1000)
      }
    },
  })
}
