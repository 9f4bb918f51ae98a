/**
 * `corral demo`'s options: the raw strings commander hands over, checked once into a frozen
 * object. Defaults give a fleet that feels like small GPUs: a 3B model at 40 tokens a second,
 * 150 ms to the first token, 5 ms per embedding input, two slots each.
 */
import type { DemoFleetOptions } from './demo-fleet.js'
import { FleetSpecError, parseFleetSpec } from './fleet-spec.js'

/** What commander hands over (every value a string, flags booleans). */
export interface RawDemoOptions {
  port?: string
  instances?: string
  slots?: string
  maxQueue?: string
  promptMs?: string
  tokenMs?: string
  embedMs?: string
  tokens?: string
  fleetOnly?: boolean
  fleetPort?: string
  controlPort?: string
  precomputed?: boolean
  frozenTimings?: boolean
  json?: boolean
  logLevel?: string
}

export interface DemoOptions {
  /** corral's port on 127.0.0.1. */
  readonly port: number
  readonly fleet: DemoFleetOptions
  /** Only the simulated instances, no corral. */
  readonly fleetOnly: boolean
  /** Port of the control channel; undefined: none (the default unless --fleet-only). */
  readonly controlPort: number | undefined
  /** One JSON line describing the fleet instead of the guide. */
  readonly json: boolean
  /** corral's log level. */
  readonly logLevel: string
}

export const DEMO_DEFAULTS = {
  port: 11435, instances: '3', slots: 2, maxQueue: 512, promptMs: 150, tokenMs: 25, embedMs: 5, tokens: 40, logLevel: 'warn',
} as const

/** Vectors precomputed per model with --precomputed. */
const POOL_SIZE = 256

/** A bad option, reported in one line with exit status 2. */
export class DemoUsageError extends Error {}

export function parseDemoOptions(raw: RawDemoOptions): DemoOptions {
  const problems: string[] = []
  const number = (flag: string, value: string | undefined, fallback: number, min: number, max: number, integer = true): number => {
    if (value === undefined) return fallback
    const n = Number(value)
    if (value.trim() === '' || !Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
      problems.push(`${flag} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${JSON.stringify(value)}`)
      return fallback
    }
    return n
  }
  let instances: ReturnType<typeof parseFleetSpec> = []
  try {
    instances = parseFleetSpec(raw.instances ?? DEMO_DEFAULTS.instances)
  } catch (err) {
    if (!(err instanceof FleetSpecError)) throw err
    problems.push(err.message)
  }
  const fleetPort = number('--fleet-port', raw.fleetPort, 0, 0, 65535)
  const fleetOnly = raw.fleetOnly === true
  const options: DemoOptions = {
    port: number('--port', raw.port, DEMO_DEFAULTS.port, 0, 65535),
    fleet: {
      instances,
      // The instances take consecutive ports from --fleet-port, or any free ones.
      ports: instances.map((_, i) => (fleetPort === 0 ? 0 : fleetPort + i)),
      slots: number('--slots', raw.slots, DEMO_DEFAULTS.slots, 1, 1024),
      maxQueue: number('--max-queue', raw.maxQueue, DEMO_DEFAULTS.maxQueue, 0, 1_000_000),
      promptDelayMs: number('--prompt-ms', raw.promptMs, DEMO_DEFAULTS.promptMs, 0, 60_000, false),
      tokenDelayMs: number('--token-ms', raw.tokenMs, DEMO_DEFAULTS.tokenMs, 0, 60_000, false),
      embedDelayMs: number('--embed-ms', raw.embedMs, DEMO_DEFAULTS.embedMs, 0, 60_000, false),
      tokens: number('--tokens', raw.tokens, DEMO_DEFAULTS.tokens, 1, 100_000),
      embeddingPool: raw.precomputed === true ? POOL_SIZE : 0,
      frozenTimings: raw.frozenTimings === true,
    },
    fleetOnly,
    controlPort: raw.controlPort !== undefined ? number('--control-port', raw.controlPort, 0, 0, 65535) : fleetOnly ? 0 : undefined,
    json: raw.json === true,
    logLevel: raw.logLevel ?? DEMO_DEFAULTS.logLevel,
  }
  if (fleetPort !== 0 && fleetPort + instances.length - 1 > 65535) problems.push(`--fleet-port leaves no room for ${instances.length} instances`)
  if (problems.length > 0) throw new DemoUsageError(problems.join('\n'))
  return options
}
