/**
 * A fleet of fake Ollama instances in one process: the stand-in GPUs of `corral demo`, and of the
 * benchmarks through `corral demo --fleet-only`. Each instance counts the work it was given
 * (generations received, completed, cut by a kill, abandoned by the client) so a benchmark can
 * tell where a balancer sent work and what happened to it.
 */
import { startFakeOllama, type FakeOllama, type RecordedRequest, type ResponseOutcome } from './fake-ollama.js'
import type { InstanceSpec } from './fleet-spec.js'

/** The time model and answer settings every instance of the fleet shares. */
export interface DemoFleetOptions {
  readonly instances: readonly InstanceSpec[]
  /** Ports of the instances in order; 0 or missing: any free port. */
  readonly ports?: readonly number[]
  /** Inference slots per instance (OLLAMA_NUM_PARALLEL). */
  readonly slots: number
  /** Requests waiting for a slot before 503 (OLLAMA_MAX_QUEUE). */
  readonly maxQueue: number
  /** Time in the slot before the first token, in ms (times the instance's speed). */
  readonly promptDelayMs: number
  /** Time per generated token, in ms (times the instance's speed). */
  readonly tokenDelayMs: number
  /** Time per embedding input, in ms (times the instance's speed). */
  readonly embedDelayMs: number
  /** Tokens of an answer whose request sets no num_predict (and the most it may ask for). */
  readonly tokens: number
  /** Precomputed vectors per model; 0: every vector is computed. */
  readonly embeddingPool: number
  /** Byte-identical answers for equal requests (fixed created_at, nominal durations). */
  readonly frozenTimings: boolean
}

/** Paths whose requests are generations, the work the balancing benchmark counts. */
const GENERATIONS: ReadonlySet<string> = new Set(['/api/generate', '/api/chat', '/v1/chat/completions', '/v1/completions'])

/** Per-instance counters, as the control channel's GET /stats reports them. */
export interface InstanceStats {
  name: string
  url: string
  speed: number
  alive: boolean
  received: number
  completed: number
  cut: number
  aborted: number
  running: number
  queued: number
}

export class DemoInstance {
  readonly name: string
  speed: number
  alive = true
  /** Generations received, completed, cut by a kill, abandoned by the client. */
  received = 0
  completed = 0
  cut = 0
  aborted = 0
  readonly #fake: FakeOllama

  constructor(spec: InstanceSpec, fake: FakeOllama) {
    this.name = spec.name
    this.speed = spec.speed
    this.#fake = fake
  }

  get url(): string { return this.#fake.url }
  get fake(): FakeOllama { return this.#fake }

  /** Counts a request the fake received (called from its onRequest). */
  countRequest(request: RecordedRequest): void {
    if (GENERATIONS.has(pathOf(request))) this.received++
  }

  /** Counts how a generation ended (called from the fake's onResponse). */
  countResponse(request: RecordedRequest, outcome: ResponseOutcome): void {
    if (!GENERATIONS.has(pathOf(request))) return
    if (outcome === 'completed') this.completed++
    else if (outcome === 'killed') this.cut++
    else this.aborted++
  }

  /** Runs this many times slower from the next request on (1 = the time model). */
  setSpeed(factor: number): void {
    this.speed = factor
    this.#fake.setSpeed(factor)
  }

  /** Closes the listener and destroys every socket: new connections are refused, work in flight is cut. */
  async kill(): Promise<void> {
    this.alive = false
    await this.#fake.stop()
  }

  stats(): InstanceStats {
    const inFlight = this.received - this.completed - this.cut - this.aborted
    const queued = this.#fake.queued
    return {
      name: this.name, url: this.url, speed: this.speed, alive: this.alive,
      received: this.received, completed: this.completed, cut: this.cut, aborted: this.aborted,
      running: Math.max(0, inFlight - queued), queued,
    }
  }
}

function pathOf(request: RecordedRequest): string {
  const q = request.path.indexOf('?')
  return q === -1 ? request.path : request.path.slice(0, q)
}

export interface DemoFleet {
  readonly instances: readonly DemoInstance[]
  /** Stops every instance. Idempotent. */
  close(): Promise<void>
}

/** Starts every instance of the fleet on 127.0.0.1; if one cannot listen, the others are stopped. */
export async function startDemoFleet(options: DemoFleetOptions, onRequest?: (request: RecordedRequest) => void): Promise<DemoFleet> {
  const started = await Promise.allSettled(options.instances.map(async (spec, i) => {
    // The fake reports to its instance, which needs the started fake: set once both exist.
    const counted: { instance?: DemoInstance } = {}
    const fake = await startFakeOllama({
      name: spec.name,
      numParallel: options.slots,
      maxQueue: options.maxQueue,
      promptDelayMs: options.promptDelayMs,
      tokenDelayMs: options.tokenDelayMs,
      embedDelayMs: options.embedDelayMs,
      tokens: options.tokens,
      embeddingPool: options.embeddingPool,
      frozenTimings: options.frozenTimings,
      headers: { 'X-Instance': spec.name },
      // A demo or a benchmark runs for hours: count, do not keep.
      recordRequests: false,
      onRequest: (request) => {
        counted.instance?.countRequest(request)
        onRequest?.(request)
      },
      onResponse: (request, outcome) => counted.instance?.countResponse(request, outcome),
    }, options.ports?.[i] ?? 0)
    const instance = new DemoInstance(spec, fake)
    instance.setSpeed(spec.speed)
    counted.instance = instance
    return instance
  }))
  const instances = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []))
  const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected')
  const close = async (): Promise<void> => { await Promise.all(instances.map((i) => i.fake.close())) }
  if (failed !== undefined) {
    await close()
    throw failed.reason
  }
  return { instances, close }
}
