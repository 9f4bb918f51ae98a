import { Pool } from 'undici'
import type { InstanceConfig } from '../config/config.js'
import { ConcurrencyLimit, MAX_LEARNED_CONCURRENCY } from './concurrency-limit.js'
import { HealthState, type HealthListener, type HealthRules } from './health-state.js'
import { DecayingPenalty, PeakEwma } from './peak-ewma.js'

/** The kinds of model work, timed separately: an embedding and a generation differ by orders of magnitude. */
export type WorkKind = 'generation' | 'embedding'

/** What corral has measured of one kind of work on one instance. */
export interface KindTiming {
  /** Time to first byte in ms (for a non-streamed answer: its duration minus Ollama's eval_duration). */
  readonly ttfbMs: PeakEwma
  /** Generation speed in ms per token, from Ollama's eval_duration / eval_count. */
  readonly msPerToken: PeakEwma
}

/** How the numbers kept per instance behave. */
export interface InstanceRules {
  health: HealthRules
  /** Time constant of the timing averages, in ms. */
  ewmaDecayMs: number
  /** Time constant of the failure penalty, in ms. */
  failureDecayMs: number
}

/** Options shared by every instance's connection pool. */
export interface PoolOptions {
  /** Time to open a TCP connection, in ms. */
  connectTimeoutMs: number
  /** Most keep-alive connections to one instance. */
  connections: number
}

/**
 * One Ollama instance: its identity, its connection pool and the live counters that selection
 * policies read. Counters are plain fields so that reading them on the hot path costs nothing.
 */
export class Instance {
  /**
   * Position in the balancer's list; policies index their own per-instance state with it. The
   * balancer renumbers its instances when a reload adds or removes some.
   */
  index: number
  /** The instance's identity, across reloads too. */
  readonly name: string
  /** Origin without a trailing slash, e.g. `http://127.0.0.1:11434`. */
  readonly url: string
  /** Relative capacity; a reload may change it in place. */
  weight: number
  /**
   * The configured cap (`max_concurrency`): requests of one kind corral sends here at once,
   * overriding what it learns; undefined (the default): the learned limit. A reload may change it.
   */
  maxConcurrency: number | undefined
  /** Learned concurrency per kind of work (see ConcurrencyLimit); used when no cap is configured. */
  readonly concurrency: Readonly<Record<WorkKind, ConcurrencyLimit>>
  /** Model requests in flight here per kind of work (each kind runs in its own Ollama runner). */
  readonly inFlightOf: Record<WorkKind, number> = { generation: 0, embedding: 0 }
  /**
   * Keep-alive connection pool; every upstream request to this instance goes through it. A
   * reload that changes the pool options replaces it (the old one drains and closes).
   */
  pool: Pool
  /** Requests corral has sent here that have not finished (response fully relayed or failed). */
  inFlight = 0
  /** Requests sent here since start. */
  requests = 0
  /** Attempts that failed here (transport error, timeout, 5xx before the first byte). */
  failures = 0
  /** The last failure seen here, for stats and error messages. */
  lastError: string | undefined
  /** Active and passive health. */
  readonly health: HealthState
  readonly timing: Readonly<Record<WorkKind, KindTiming>>
  /** Recent failures, decaying; added to the load score. */
  readonly penalty: DecayingPenalty
  /** Models on the instance (canonical name -> digest) from discovery; undefined until known. */
  models: ReadonlyMap<string, string> | undefined
  /** Models loaded in memory (canonical names) from discovery and recent answers; undefined until known. */
  loaded: Set<string> | undefined
  /**
   * When each model request in flight here is expected to end (ms, the balancer's clock), one
   * cell per request (both kinds), 0 when free: the load score reads when the next slot frees.
   */
  expectedEnds: Float64Array
  /** Passive ejections, and health state changes of any kind, since the instance was added. */
  ejections = 0
  stateChanges = 0
  /** Set when a reload removed the instance: it takes no new request and closes once idle. */
  retired = false
  #closed = false
  /** Pools replaced by a reload that are still draining. */
  readonly #oldPools = new Set<Pool>()

  constructor(index: number, config: InstanceConfig, pool: PoolOptions, rules: InstanceRules, onHealth: HealthListener) {
    this.index = index
    this.name = config.name
    this.url = config.url
    this.weight = config.weight
    this.maxConcurrency = config.maxConcurrency
    this.health = new HealthState(rules.health, onHealth)
    const timing = (): KindTiming => ({ ttfbMs: new PeakEwma(rules.ewmaDecayMs), msPerToken: new PeakEwma(rules.ewmaDecayMs) })
    this.timing = { generation: timing(), embedding: timing() }
    this.penalty = new DecayingPenalty(rules.failureDecayMs)
    this.concurrency = { generation: new ConcurrencyLimit(), embedding: new ConcurrencyLimit() }
    this.expectedEnds = new Float64Array(cellsFor(config.maxConcurrency))
    this.pool = newPool(config.url, pool)
  }

  /**
   * Applies a reloaded configuration of the same instance (same name and url): weight and
   * concurrency cap change in place, what was learned (timings, health, penalty) stays. Slot
   * cells of requests in flight keep their positions; when the cap shrinks, the cells beyond it
   * are forgotten (their release writes past the end of the array, which typed arrays ignore).
   */
  reconfigure(config: InstanceConfig): void {
    this.weight = config.weight
    if (config.maxConcurrency !== this.maxConcurrency) {
      const ends = new Float64Array(cellsFor(config.maxConcurrency))
      ends.set(this.expectedEnds.subarray(0, Math.min(ends.length, this.expectedEnds.length)))
      this.expectedEnds = ends
      this.maxConcurrency = config.maxConcurrency
    }
  }

  /**
   * Replaces the connection pool (new pool options). Requests already dispatched finish on the
   * old pool, which then closes; new ones use the new pool.
   */
  replacePool(options: PoolOptions): Promise<void> {
    const old = this.pool
    this.pool = newPool(this.url, options)
    this.#oldPools.add(old)
    // Never rejects: a pool destroyed meanwhile (shutdown) is closed enough.
    return old
      .close()
      .catch(() => undefined)
      .finally(() => this.#oldPools.delete(old))
  }

  /** Requests of `work` this instance takes at once now: the configured cap, else the learned limit. */
  slots(work: WorkKind): number {
    return this.maxConcurrency ?? this.concurrency[work].value
  }

  /** True when the instance already carries as many requests of `work` as it has slots for. */
  fullFor(work: WorkKind): boolean {
    return this.inFlightOf[work] >= this.slots(work)
  }

  /** True when every kind of work is at its limit here. */
  get saturated(): boolean {
    return this.fullFor('generation') && this.fullFor('embedding')
  }

  /** Records a model request's expected end in a free slot cell; returns the cell (-1 if none is free). */
  holdSlot(expectedEnd: number): number {
    const ends = this.expectedEnds
    for (let i = 0; i < ends.length; i++) {
      if (ends[i] === 0) {
        ends[i] = expectedEnd
        return i
      }
    }
    return -1
  }

  /**
   * ms from `now` until the first request in flight is expected to end (0 if none is). A request
   * already overdue by d ms counts as d ms away: the estimate was wrong, and an instance whose
   * requests hang must not keep attracting waiters. Read for an instance that is full.
   */
  nextFreeInMs(now: number): number {
    const ends = this.expectedEnds
    let first = Infinity
    for (let i = 0; i < ends.length; i++) {
      const end = ends[i]!
      if (end !== 0 && end < first) first = end
    }
    return first === Infinity ? 0 : Math.abs(first - now)
  }

  /** Whether discovery says the instance has `model` (a canonical name); true while unknown. */
  mayHave(model: string): boolean {
    return this.models === undefined || this.models.has(model)
  }

  /** Lets requests in flight finish, then closes every connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.all([this.pool, ...this.#oldPools].map((p) => p.close()))
  }

  /** Closes every connection at once, aborting what is in flight. Idempotent. */
  async destroy(): Promise<void> {
    this.#closed = true
    await Promise.all([this.pool, ...this.#oldPools].map((p) => (p.destroyed ? Promise.resolve() : p.destroy())))
  }
}

/** Slot cells to keep: a cell per request in flight, for both kinds of work. */
function cellsFor(cap: number | undefined): number {
  return 2 * (cap ?? MAX_LEARNED_CONCURRENCY)
}

function newPool(url: string, options: PoolOptions): Pool {
  return new Pool(url, {
    connections: options.connections,
    connectTimeout: options.connectTimeoutMs,
    // Ollama (Go net/http) keeps idle connections open indefinitely; reuse them for a while.
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
  })
}
