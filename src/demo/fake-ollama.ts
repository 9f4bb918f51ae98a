/**
 * A fake Ollama server: the stand-in fleet of `corral demo`, the upstream of corral's tests and
 * of its benchmarks.
 *
 * It is a real `node:http` server on 127.0.0.1 that answers like Ollama 0.12 does (server/routes.go,
 * openai/openai.go): NDJSON streams written one line at a time with a delay between tokens, gin's
 * plain-text 404/405, `{"error":"..."}` bodies with Ollama's own messages, OpenAI-shaped errors on
 * `/v1`, a FIFO slot queue like OLLAMA_NUM_PARALLEL/OLLAMA_MAX_QUEUE. Answers are deterministic
 * functions of the request, so two fakes serving the same model give byte-identical text and
 * vectors, which is what cache and fail-over tests compare. Faults (`Behaviour`) are scripted per
 * request; every request is recorded as received.
 *
 * This file owns the sockets, the recording, the waits and the lifecycle; the routes, slots,
 * answers and faults live in the files next to it.
 */
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { FROZEN_CLOCK, REAL_CLOCK } from './answer-clock.js'
import { EmbeddingPool } from './embedding-pool.js'
import type { FakeContext } from './fake-context.js'
import { FakeExchange, Gone } from './fake-exchange.js'
import type { Behaviour, FakeModel, FakeOllama, FakeOllamaOptions, RecordedRequest, WaitOptions } from './fake-ollama-types.js'
import { route } from './fake-routes.js'
import { applyBehaviour, FaultScript } from './fault-script.js'
import { pathnameOf } from './json-values.js'
import { ModelCatalog, modelEntry } from './model-catalog.js'
import { SlotQueue } from './slot-queue.js'

export * from './fake-ollama-types.js'

/** Paths corral polls in the background (health checks, model discovery). */
const BACKGROUND_PATHS: ReadonlySet<string> = new Set(['/api/version', '/api/tags', '/api/ps'])

const EMPTY = Buffer.alloc(0)

/** Default deadline of a wait on the fake: well under tap's 120 s per file, far above any honest wait. */
const DEFAULT_WAIT_TIMEOUT_MS = 10_000

/** The models of a fake given none: a chat model and an embedding model, as on a typical host. */
export const DEFAULT_MODELS: readonly FakeModel[] = [{ name: 'llama3.2:latest' }, { name: 'nomic-embed-text:latest', embedding: true, dims: 768 }]

/** Start a fake Ollama on 127.0.0.1 with an ephemeral port (or `port`). */
export async function startFakeOllama(opts: FakeOllamaOptions = {}, port = 0): Promise<FakeOllama> {
  const fake = new FakeOllamaServer(opts, port)
  await fake.restart()
  return fake
}

interface Waiter { test: () => boolean; resolve: () => void }

class FakeOllamaServer implements FakeOllama {
  readonly name: string
  readonly requests: RecordedRequest[] = []
  readonly background: RecordedRequest[] = []
  readonly #ctx: FakeContext
  readonly #catalog: ModelCatalog
  /** The server's slot queue, or the first model's runner when `slotsPerModel`. */
  readonly #slots: SlotQueue
  /** Runners by model name when `slotsPerModel`, made on first use. */
  readonly #runners = new Map<string, SlotQueue>()
  readonly #faults = new FaultScript()
  readonly #server: Server
  readonly #sockets = new Set<Socket>()
  /** Sockets the fixture destroyed on purpose: their closes are not the client going away. */
  readonly #killed = new WeakSet<Socket>()
  readonly #waiters = new Set<Waiter>()
  readonly #opts: FakeOllamaOptions
  readonly #waitTimeoutMs: number
  #tokenDelayMs: number
  #speed = 1
  /** Client requests seen, whether kept in `requests` or not, by pathname. */
  readonly #counts = new Map<string, number>()
  #total = 0
  #inFlight = 0
  #closedEarly = 0
  #completed = 0
  #port: number
  #nextId = 0

  constructor(opts: FakeOllamaOptions, port: number) {
    this.name = opts.name ?? 'fake-ollama'
    this.#opts = opts
    this.#port = port
    this.#tokenDelayMs = opts.tokenDelayMs ?? 2
    this.#waitTimeoutMs = opts.waitTimeoutMs ?? DEFAULT_WAIT_TIMEOUT_MS
    const models = opts.models ?? DEFAULT_MODELS
    this.#catalog = new ModelCatalog(models, opts.loaded ?? models.slice(0, 1).map((m) => m.name))
    const newQueue = (): SlotQueue => new SlotQueue(opts.numParallel ?? 4, opts.maxQueue ?? 512, () => this.#changed())
    this.#slots = newQueue()
    const pool = (opts.embeddingPool ?? 0) > 0 ? new EmbeddingPool(opts.embeddingPool ?? 0) : undefined
    this.#ctx = {
      catalog: this.#catalog, tokens: opts.tokens ?? 8, version: opts.version ?? '0.12.6', pool,
      clock: opts.frozenTimings === true ? FROZEN_CLOCK : REAL_CLOCK,
      nextId: () => ++this.#nextId,
      slotsFor: (model) => {
        if (opts.slotsPerModel !== true) return this.#slots
        let queue = this.#runners.get(model)
        if (queue === undefined) {
          queue = this.#runners.size === 0 ? this.#slots : newQueue()
          this.#runners.set(model, queue)
        }
        return queue
      },
    }
    // Go's http.Server, as Ollama runs it, has no idle or request timeouts; Node's defaults (5s
    // keep-alive, 300s request) would close pooled upstream sockets that Ollama keeps open.
    this.#server = createServer({ keepAliveTimeout: 0, requestTimeout: 0 }, (req, res) => void this.#handle(req, res))
    this.#server.on('connection', (socket) => {
      this.#sockets.add(socket)
      socket.once('close', () => this.#sockets.delete(socket))
    })
  }

  get url(): string { return `http://127.0.0.1:${this.#port}` }
  get port(): number { return this.#port }
  get inFlight(): number { return this.#inFlight }
  get queued(): number {
    if (this.#runners.size === 0) return this.#slots.queued
    let n = 0
    for (const q of this.#runners.values()) n += q.queued
    return n
  }
  get closedEarly(): number { return this.#closedEarly }
  get completed(): number { return this.#completed }

  count(path?: string): number {
    // Recorded requests are the truth while they are kept (a test may edit the list); the
    // counters stand in when a benchmark turns recording off.
    if (this.#opts.recordRequests !== false) {
      return path === undefined ? this.requests.length : this.requests.filter((r) => pathnameOf(r.path) === path).length
    }
    return path === undefined ? this.#total : this.#counts.get(path) ?? 0
  }

  waitUntil(predicate: (fake: FakeOllama) => boolean, options: WaitOptions = {}): Promise<void> {
    if (predicate(this)) return Promise.resolve()
    const timeoutMs = options.timeoutMs ?? this.#waitTimeoutMs
    const what = options.what ?? predicate.toString()
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        test: () => predicate(this),
        resolve: () => {
          clearTimeout(timer)
          resolve()
        },
      }
      const timer = setTimeout(() => {
        this.#waiters.delete(waiter)
        const state = `requests=${this.count()} inFlight=${this.#inFlight} queued=${this.queued} closedEarly=${this.#closedEarly} completed=${this.#completed}`
        reject(new Error(`${this.name}: timed out after ${timeoutMs} ms waiting until ${what} (${state})`))
      }, timeoutMs)
      this.#waiters.add(waiter)
    })
  }

  waitForClosedEarly(n: number, options: WaitOptions = {}): Promise<void> {
    return this.waitUntil((f) => f.closedEarly >= n, { what: `closedEarly >= ${n}`, ...options })
  }

  waitForRequests(n: number, path?: string, options: WaitOptions = {}): Promise<void> {
    return this.waitUntil((f) => f.count(path) >= n, { what: `${n} requests${path === undefined ? '' : ` for ${path}`}`, ...options })
  }

  script(behaviour: Behaviour, opts: { path?: string; times?: number } = {}): void { this.#faults.add(behaviour, opts) }
  clearScripts(): void { this.#faults.clear() }
  setDefault(b: Behaviour | undefined): void { this.#faults.setDefault(b) }
  setNumParallel(n: number): void {
    this.#slots.setNumParallel(n)
    for (const q of this.#runners.values()) if (q !== this.#slots) q.setNumParallel(n)
  }
  setTokenDelayMs(ms: number): void { this.#tokenDelayMs = ms }
  setSpeed(factor: number): void { this.#speed = factor }
  addModel(m: FakeModel): void { this.#catalog.put(modelEntry(m)) }
  removeModel(name: string): void { this.#catalog.remove(name) }

  async stop(): Promise<void> {
    if (!this.#server.listening) return
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()))
    // server.close() alone waits for keep-alive sockets; a dead Ollama drops them all at once.
    for (const socket of this.#sockets) {
      this.#killed.add(socket)
      socket.destroy()
    }
    await closed
  }

  close(): Promise<void> { return this.stop() }

  async restart(): Promise<void> {
    if (this.#server.listening) return
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(this.#port, '127.0.0.1', () => {
        this.#server.off('error', reject)
        resolve()
      })
    })
    this.#port = (this.#server.address() as AddressInfo).port
  }

  /** Re-check waiters; called after every change they may observe. */
  #changed(): void {
    for (const w of this.#waiters) {
      if (w.test()) {
        this.#waiters.delete(w)
        w.resolve()
      }
    }
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const aborter = new AbortController()
    /** Given to onRequest, so onResponse is owed. */
    let reported = false
    this.#inFlight++
    res.once('close', () => {
      this.#inFlight--
      const outcome = res.writableFinished ? 'completed' : this.#killed.has(req.socket) ? 'killed' : 'closed-early'
      if (outcome === 'completed') this.#completed++
      else if (outcome === 'closed-early') this.#closedEarly++
      if (reported) this.#opts.onResponse?.(record, outcome)
      aborter.abort()
      this.#changed()
    })
    const headers = this.#opts.headers
    if (headers !== undefined) for (const [k, v] of Object.entries(headers)) res.setHeader(k, v)
    const path = req.url ?? '/'
    const pathname = pathnameOf(path)
    const record: RecordedRequest = {
      method: req.method ?? 'GET', path, headers: req.headers, rawHeaders: req.rawHeaders,
      body: undefined, raw: EMPTY, bytes: 0, remoteAddress: req.socket.remoteAddress ?? '',
    }
    const keep = this.#opts.recordRequests !== false
    const ex = new FakeExchange({
      req, res, pathname, record, signal: aborter.signal, killed: this.#killed, keepAnswer: keep,
      tokenDelayMs: this.#tokenDelayMs * this.#speed,
      promptDelayMs: (this.#opts.promptDelayMs ?? 0) * this.#speed,
      embedDelayMs: this.#opts.embedDelayMs === undefined ? undefined : this.#opts.embedDelayMs * this.#speed,
      embedFurtherInputShare: this.#opts.embedFurtherInputShare ?? 1,
    })
    const background = req.method === 'GET' && BACKGROUND_PATHS.has(pathname) && /^corral\b/.test(req.headers['user-agent'] ?? '')
    // Chosen at arrival so scripts apply in the order requests come in.
    const behaviour = this.#faults.next(pathname, background)
    try {
      // Blob uploads may be large: their handler hashes the stream instead of buffering it.
      if (!(req.method === 'POST' && pathname.startsWith('/api/blobs/'))) {
        record.raw = await readAll(req)
        record.bytes = record.raw.length
        record.body = parseJsonOrUndefined(record.raw)
      }
      if (background) {
        if (keep) this.background.push(record)
      } else {
        if (keep) this.requests.push(record)
        this.#total++
        this.#counts.set(pathname, (this.#counts.get(pathname) ?? 0) + 1)
        this.#opts.onRequest?.(record)
        reported = true
      }
      this.#changed()
      if (behaviour !== undefined && (await applyBehaviour(ex, behaviour))) return
      await route(this.#ctx, ex)
    } catch (err) {
      if (err instanceof Gone || ex.signal.aborted || req.socket.destroyed) return
      // A bug in the fixture: make it visible to the test instead of hanging it.
      if (!res.headersSent) ex.sendError(500, `fake-ollama: ${String(err)}`)
      else res.destroy()
    }
  }
}

async function readAll(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk)
  return Buffer.concat(chunks)
}

function parseJsonOrUndefined(raw: Buffer): unknown {
  if (raw.length === 0) return undefined
  try {
    return JSON.parse(raw.toString('utf8'))
  } catch {
    return undefined
  }
}
