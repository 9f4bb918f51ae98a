/**
 * Which simulated instances a demo fleet has: `3` (three instances, the last one three times
 * slower, as a fleet with an older GPU) or an explicit `name:speed,...` list.
 */

/** One simulated instance: its name and how much slower than the time model it runs (1 = as configured). */
export interface InstanceSpec {
  readonly name: string
  readonly speed: number
}

/** A bad `--instances` value, reported as a usage error. */
export class FleetSpecError extends Error {}

/** How much slower the last instance of a counted fleet is. */
const SLOW_FACTOR = 3
const MAX_INSTANCES = 64

export function parseFleetSpec(text: string): InstanceSpec[] {
  const value = text.trim()
  if (/^\d+$/.test(value)) {
    const n = Number(value)
    if (n < 1 || n > MAX_INSTANCES) throw new FleetSpecError(`--instances must be 1 to ${MAX_INSTANCES}, got ${value}`)
    return Array.from({ length: n }, (_, i) => ({
      name: n > 1 && i === n - 1 ? `ollama-${i + 1}-slow` : `ollama-${i + 1}`,
      speed: n > 1 && i === n - 1 ? SLOW_FACTOR : 1,
    }))
  }
  const specs = value.split(',').map((part) => {
    const [name = '', speed = '1', ...rest] = part.trim().split(':')
    const factor = Number(speed)
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(name) || rest.length > 0 || !(factor > 0)) {
      throw new FleetSpecError(`--instances must be a count or name:speed,... (speed a number above 0), got ${JSON.stringify(part)}`)
    }
    return { name, speed: factor }
  })
  if (new Set(specs.map((s) => s.name)).size !== specs.length) throw new FleetSpecError(`--instances names must be distinct, got ${value}`)
  return specs
}
