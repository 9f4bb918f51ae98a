/**
 * The soak's fault rotation: one fault every period (faults last 3-10 s, less than a period of
 * 30 s; a shorter period delays the next fault until the previous one is lifted), in turn
 * on the next instance: an instance killed (its process stops answering and listening) and
 * restarted, its connections reset, a blackhole (accepts and never answers), a slowdown, Redis
 * frozen (SIGSTOP) then thawed, Redis killed then restarted.
 */
import type { FakeOllama } from '../../test/fixtures/fake-ollama.js'
import type { FaultProxy } from '../../test/fixtures/fault-proxy.js'

export interface RedisControl {
  freeze(): void
  thaw(): void
  kill(): Promise<void>
  restart(): Promise<void>
}

export interface FaultTargets {
  fakes: FakeOllama[]
  proxies: FaultProxy[]
  redis: RedisControl
}

/** A fault that was injected: when (seconds since start), what, and when it was lifted. */
export interface FaultWindow {
  startS: number
  endS: number
  what: string
}

interface Fault {
  name: string
  /** How long it lasts before it is lifted (ms). */
  lastsMs: number
  /** Injects it on instance `i` (if it concerns an instance); returns the lifting function. */
  inject(targets: FaultTargets, i: number): Promise<() => Promise<void>>
}

export const FAULTS: readonly Fault[] = [
  {
    name: 'instance killed',
    lastsMs: 10_000,
    async inject({ fakes }, i) {
      await fakes[i]!.stop()
      return () => fakes[i]!.restart()
    },
  },
  {
    name: 'instance connections reset',
    lastsMs: 5_000,
    async inject({ proxies }, i) {
      await proxies[i]!.set({ mode: 'reset' })
      return () => proxies[i]!.heal()
    },
  },
  {
    name: 'instance blackholed',
    lastsMs: 5_000,
    async inject({ proxies }, i) {
      await proxies[i]!.set({ mode: 'blackhole' })
      return () => proxies[i]!.heal()
    },
  },
  {
    name: 'instance slow (100 ms per chunk)',
    lastsMs: 10_000,
    async inject({ proxies }, i) {
      await proxies[i]!.set({ latencyMs: 100 })
      return () => proxies[i]!.heal()
    },
  },
  {
    name: 'redis frozen (SIGSTOP)',
    lastsMs: 5_000,
    inject({ redis }) {
      redis.freeze()
      return Promise.resolve(() => Promise.resolve(redis.thaw()))
    },
  },
  {
    name: 'redis killed',
    lastsMs: 3_000,
    async inject({ redis }) {
      await redis.kill()
      return () => redis.restart()
    },
  },
]

/**
 * Runs the rotation until `signal` aborts: the first fault after one period, then one per period.
 * A fault still active at the end is lifted. Each window is pushed to `windows` when the fault is
 * injected (its `endS` NaN while active).
 */
export async function rotateFaults(
  targets: FaultTargets,
  periodMs: number,
  startedAt: number,
  signal: AbortSignal,
  log: (line: string) => void,
  windows: FaultWindow[],
): Promise<void> {
  const sinceStart = (): number => Math.round((Date.now() - startedAt) / 100) / 10
  let n = 0
  while (!signal.aborted) {
    // Fault n starts at (n + 1) periods, whatever the previous one lasted.
    if (!(await pause(startedAt + (n + 1) * periodMs - Date.now(), signal))) break
    const fault = FAULTS[n % FAULTS.length]!
    // Shifted by one each round, so every instance meets every fault.
    const instance = (n + Math.floor(n / FAULTS.length)) % targets.fakes.length
    n++
    const what = fault.name.replace(/^instance/, `instance i${instance}`)
    const window: FaultWindow = { startS: sinceStart(), endS: Number.NaN, what }
    windows.push(window)
    log(`t=${window.startS}s fault: ${what}`)
    const lift = await fault.inject(targets, instance)
    await pause(fault.lastsMs, signal)
    await lift()
    window.endS = sinceStart()
    log(`t=${window.endS}s lifted: ${what}`)
  }
}

/** Waits `ms` (at least 0); resolves false at once if `signal` aborts first. */
function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false)
  if (ms <= 0) return Promise.resolve(true)
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort)
      resolve(true)
    }, ms)
    const onAbort = (): void => {
      clearTimeout(timer)
      resolve(false)
    }
    signal.addEventListener('abort', onAbort, { once: true })
  })
}
