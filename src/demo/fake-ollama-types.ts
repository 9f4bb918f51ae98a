/**
 * The public shape of the fake Ollama: its options, the faults a test can script, what it records
 * and the handle a caller gets. Tests (through test/fixtures/fake-ollama.ts), `corral demo` and the
 * benchmarks all program against these types, so they change only by addition.
 */
import type { IncomingHttpHeaders } from 'node:http'

/** A model the fake has "on disk". */
export interface FakeModel {
  /** Model name; a missing tag means `:latest`, as in Ollama. */
  name: string
  /** Manifest digest (64 hex, `sha256:` prefix optional). Default: sha256 of the canonical name, so stable per name. */
  digest?: string
  /** `details.family`. Default `llama`, or `nomic-bert` for embedding models. */
  family?: string
  /** `details.parameter_size`. Default `3.2B`, or `137M` for embedding models. */
  parameterSize?: string
  /** Embedding-only model: generate/chat answer 400 `"x" does not support generate|chat`. Default false. */
  embedding?: boolean
  /** Embedding length (vector size of /api/embed). Default 768. */
  dims?: number
  /** `modified_at` (ISO 8601). Default: when added; models given at start are one second apart, in order. */
  modifiedAt?: string
}

/** Options of {@link startFakeOllama}. */
export interface FakeOllamaOptions {
  /** Label for debugging, exposed as {@link FakeOllama.name}. Default `fake-ollama`. */
  name?: string
  /** Local models. Default: `llama3.2:latest` and the embedding model `nomic-embed-text:latest` (768 dims). */
  models?: FakeModel[]
  /** Names listed by /api/ps at start. Default: the first model. */
  loaded?: string[]
  /** Inference slots, like OLLAMA_NUM_PARALLEL but for the whole server. Default 4. */
  numParallel?: number
  /**
   * Give each model its own runner, as Ollama does with several models loaded: `numParallel` slots
   * and a FIFO of `maxQueue` per model, so a busy embedding model does not queue chats. Default
   * false: one slot queue for the whole server.
   */
  slotsPerModel?: boolean
  /** Requests allowed to wait for a slot, like OLLAMA_MAX_QUEUE; beyond it 503. Default 512. */
  maxQueue?: number
  /** Delay before each streamed token or progress line, in ms. Default 2. */
  tokenDelayMs?: number
  /** Tokens per answer, unless `options.num_predict`/`max_tokens` is smaller. Default 8. */
  tokens?: number
  /** Answer of /api/version. Default `0.12.6`. */
  version?: string
  /**
   * Time a generation spends in its slot before the first token (prompt evaluation), in ms; scaled
   * by the speed factor. Default 0.
   */
  promptDelayMs?: number
  /**
   * Cost of one embedding input, in ms: a batch of n inputs takes n times this in its slot. Default:
   * one `tokenDelayMs` per request, whatever its size.
   */
  embedDelayMs?: number
  /**
   * Cost of each embedding input after the first, as a share of `embedDelayMs` (a runner batches
   * inputs, so they cost less than the first): n inputs take `embedDelayMs * (1 + share * (n - 1))`.
   * Default 1: n times `embedDelayMs`. Ignored without `embedDelayMs`.
   */
  embedFurtherInputShare?: number
  /**
   * Answer /api/embed and /api/embeddings from this many vectors made at start (picked by a hash of
   * each input, still deterministic) instead of computing one per input, so that a benchmark
   * measures the proxy, not the fake. Default 0: every vector is computed.
   */
  embeddingPool?: number
  /**
   * Answers carry a fixed `created_at` and the time model's nominal durations instead of measured
   * ones, so equal requests get byte-identical answers (benchmarks compare bytes). Default false.
   */
  frozenTimings?: boolean
  /** Extra headers on every answer (e.g. `X-Instance`, to tell instances apart). Default none. */
  headers?: Readonly<Record<string, string>>
  /**
   * Keep every request in {@link FakeOllama.requests}. Default true; a long benchmark turns it off
   * (counters and {@link FakeOllamaOptions.onRequest} still work) so memory stays flat.
   */
  recordRequests?: boolean
  /** Called with every client request once its body is read (background probes excepted). */
  onRequest?: (request: RecordedRequest) => void
  /**
   * Called when the answer to a request given to `onRequest` ends: sent completely, closed early by
   * the client, or killed by the fake itself (stop(), a scripted fault).
   */
  onResponse?: (request: RecordedRequest, outcome: ResponseOutcome) => void
  /** Default deadline of {@link FakeOllama.waitUntil} and the waits built on it, in ms. Default 10 000. */
  waitTimeoutMs?: number
}

/** How an answer ended; see {@link FakeOllamaOptions.onResponse}. */
export type ResponseOutcome = 'completed' | 'closed-early' | 'killed'

/** Options of one {@link FakeOllama.waitUntil}. */
export interface WaitOptions {
  /** Reject after this many ms. Default: the fake's `waitTimeoutMs` (10 s). */
  timeoutMs?: number
  /** What is awaited, for the rejection's message. Default: the predicate's source text. */
  what?: string
}

/** A fault to inject into one request (see {@link FakeOllama.script}). */
export type Behaviour =
  /** Reset the connection (TCP RST) once the request is read; no response at all. */
  | { kind: 'refuse' }
  /** Never send headers; hold the socket until the client goes away (or stop()). */
  | { kind: 'hang' }
  /** Stream `chunks` lines/events, then close the socket mid-body. A non-streamed answer is cut after half its body. */
  | { kind: 'die-after-chunks'; chunks: number }
  /**
   * Stream `chunks` lines, then end the stream with an `{"error": ...}` line, status 200, as Ollama
   * does when a model fails mid-generation. Default error: `an error was encountered while running the model`.
   */
  | { kind: 'error-after-chunks'; chunks: number; error?: string }
  /** Answer at once with `status` and an error body (OpenAI-shaped on /v1). Default text: Ollama's busy message for 503, else the status text. */
  | { kind: 'status'; status: number; error?: string }
  /** Stream this request with `tokenDelayMs` between chunks (also slows stream:false answers). */
  | { kind: 'slow'; tokenDelayMs: number }
  /** Wait `ms` before handling the request normally, like a model load before the first byte. */
  | { kind: 'delay-headers'; ms: number }
  /**
   * A pull, push or create that fails after `lines` progress lines: streamed, an `{"error"}` line
   * with status 200 as Ollama writes it; with stream:false, 500 and the error (Ollama's waitForStream).
   * The model is not changed. Default error: `pull model manifest: file does not exist`.
   */
  | { kind: 'fail-progress'; lines: number; error?: string }

/** One request as the fake received it. */
export interface RecordedRequest {
  method: string
  /** Path with query string, as sent. */
  path: string
  /** Headers as received (lower-cased keys), to check X-Forwarded-For, Host, hop-by-hop stripping. */
  headers: IncomingHttpHeaders
  /** Raw header list, preserving order, case and duplicates. */
  rawHeaders: string[]
  /** Parsed JSON body, or undefined when empty or not JSON. */
  body: unknown
  /** Raw body. Blob uploads are hashed while streaming and not kept here (see `bytes`). */
  raw: Buffer
  /** Body length in bytes (for blob uploads: bytes streamed so far). */
  bytes: number
  remoteAddress: string
  /** The body of the fake's answer, when it was sent in one piece (not streamed). */
  answer?: Buffer
}

/** Handle on a running fake; see {@link startFakeOllama}. */
export interface FakeOllama {
  readonly name: string
  /** `http://127.0.0.1:PORT` */
  readonly url: string
  readonly port: number
  /** Every request received, in arrival order (recorded once its body is read), corral's background probes excepted. */
  readonly requests: RecordedRequest[]
  /**
   * corral's own health checks and model discovery (GET /api/version, /api/tags, /api/ps with a
   * `corral` user agent), kept apart so that tests count client traffic. They follow the default
   * behaviour, and scripts only when the script names their path.
   */
  readonly background: RecordedRequest[]
  /** Requests seen, optionally only those for one pathname (no query). */
  count(path?: string): number
  /** Requests whose response has not finished or closed yet (queued ones included). */
  readonly inFlight: number
  /** Requests waiting for an inference slot. */
  readonly queued: number
  /** Responses whose client went away before they finished (sockets the fake killed itself do not count). */
  readonly closedEarly: number
  /** Responses that were sent completely. */
  readonly completed: number
  /**
   * Resolves when `predicate(this)` holds; re-checked on every state change, never polled. Rejects
   * once the deadline passes (default 10 s), naming what was awaited and the fake's state, so a
   * regression fails at the wait instead of at tap's whole-file timeout.
   */
  waitUntil(predicate: (fake: FakeOllama) => boolean, options?: WaitOptions): Promise<void>
  /** Resolves when closedEarly >= n (with waitUntil's deadline). */
  waitForClosedEarly(n: number, options?: WaitOptions): Promise<void>
  /** Resolves when count(path) >= n (with waitUntil's deadline). */
  waitForRequests(n: number, path?: string, options?: WaitOptions): Promise<void>
  /** Queue a behaviour for the next `times` (default 1) requests, only those for `path` (a pathname) if given. */
  script(b: Behaviour, opts?: { path?: string; times?: number }): void
  /** Forgets every scripted behaviour not used yet. */
  clearScripts(): void
  /** Changes the number of inference slots; requests already running keep theirs until they end. */
  setNumParallel(n: number): void
  /** Changes the delay before each token of requests from now on, in ms (the instance gets slower or faster). */
  setTokenDelayMs(ms: number): void
  /**
   * Multiplies prompt and token delays of requests from now on (1 = as configured, 3 = three times
   * slower), as a GPU shared with other work would.
   */
  setSpeed(factor: number): void
  /** Behaviour for every request not matched by a script; undefined clears it. */
  setDefault(b: Behaviour | undefined): void
  /** Add (or replace) a local model, as if pulled. */
  addModel(m: FakeModel): void
  /** Remove a local model, as if deleted. */
  removeModel(name: string): void
  /** Stop listening and destroy every socket; afterwards connections are refused. Idempotent. */
  stop(): Promise<void>
  /** Listen again on the same port. */
  restart(): Promise<void>
  /** Alias of stop(), idempotent. */
  close(): Promise<void>
}

/** Ollama's 500 when a model's runner crashed (its health check still passes). */
export const RUNNER_TERMINATED_ERROR = 'llama runner process has terminated: exit status 2'

/** Ollama's answer when OLLAMA_MAX_QUEUE is exceeded (the two spaces are Ollama's). */
export const SERVER_BUSY_ERROR = 'server busy, please try again.  maximum pending requests exceeded'
