import type { IncomingMessage, ServerResponse } from 'node:http'
import type { BalancedRequest } from '../balancer/balancer.js'
import type { Instance, WorkKind } from '../balancer/instance.js'
import type { PriorityClass } from '../config/priority-class.js'
import type { Route } from './routes.js'

/**
 * Sees an upstream answer as it is relayed (the cache captures answers through it). Called only
 * for the answer that reaches the client, never for a 503 held back for failover.
 */
export interface ResponseTap {
  /** Status and headers of the instance's answer. */
  start(statusCode: number, headers: Readonly<Record<string, string | string[] | undefined>>): void
  /** One chunk of the body, as received (the buffer must not be kept past the call without copying). */
  data(chunk: Buffer): void
  /** The body arrived whole. */
  end(): void
  /** The answer failed or was cut after it started (nothing more will come). */
  abort(reason: string): void
}

/**
 * One client request and its response, as it moves through corral. Created once per request;
 * everything the stages learn (body, model, chosen instance, timings) is recorded here.
 */
export class Exchange implements BalancedRequest {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly id: string
  readonly route: Route
  /** Request target (path and query), normalised by the server (see normaliseTarget). */
  readonly target: string
  /** Limit of a streamed upload's body in bytes (0: none); counted on the way when it is chunked. */
  uploadLimitBytes = 0
  /** The peer's address, as corral sees it. */
  peer = 'unknown'
  /** The peer is a trusted proxy (`server.trust_proxy`): its X-Forwarded-* headers are kept. */
  trustedPeer = false
  /** `performance.now()` when the request arrived. */
  readonly startedAt: number
  /**
   * The attempt in progress, cancelled at once when the client goes away (unless `followed`:
   * then it goes on without the client).
   */
  upstream: { cancel(): void } | undefined
  /**
   * Set by the cache while this request leads a single flight: whether followers are waiting for
   * its upstream answer. While they are, the client leaving does not cancel the upstream request.
   */
  followed: (() => boolean) | undefined
  /** The request body, when it was read whole (undefined: none, or streamed through). */
  body: Buffer | undefined
  /**
   * The parsed JSON body, when the route reads one; as it goes upstream (the embedding cache
   * replaces it with `body` when it sends only the items it misses).
   */
  json: Record<string, unknown> | undefined
  /** The `model` field of the body, if any. */
  model: string | undefined
  /** The requested model's canonical name (`name:tag`), if any. */
  modelKey: string | undefined
  /** Session key for affinity, if configured and present. */
  affinityKey: string | undefined
  /** No candidate instance was healthy: the request goes round-robin over all of them. */
  fallback = false
  /** The answer's token limit, when the request sets one (`options.num_predict`, `max_tokens`). */
  maxTokens: number | undefined
  /** The balancer's slot cell while in flight. */
  slot = -1
  /** Requests of its kind in flight at its instance when sent, itself included (BalancedRequest). */
  level = 0
  /** The instance that answered (or was tried last). */
  instance: Instance | undefined
  /** Upstream attempts made. */
  attempts = 0
  /** `performance.now()` when the response headers went to the client; 0 until then. */
  firstByteAt = 0
  /** Sees the upstream answer as it arrives (set by the cache to capture it). */
  tap: ResponseTap | undefined
  /**
   * Whether the upstream answer is written to the client. False when the cache assembles the
   * client's answer itself (per-item embeddings) and only reads the instance's through `tap`.
   */
  relay = true
  /** What the cache did (`hit`, `miss`, `bypass`, `coalesced`), for the log; undefined: not a cached route. */
  cache: 'hit' | 'miss' | 'bypass' | 'coalesced' | undefined
  /** Set when the client closed the connection before the response was complete. */
  clientGone = false
  /** Ollama's eval_count and prompt_eval_count from the answer's final chunk, when read (generations). */
  tokens: number | undefined
  promptTokens: number | undefined
  /** The caller's key name (auth), for the log; undefined while auth is off. */
  key: string | undefined
  /** The `key` metric label: the key name (bounded), `anonymous` while auth is off. */
  keyLabel = 'anonymous'
  /** The caller's cache partition (see `Principal.cachePartition`); '' while auth is off. */
  cachePartition = ''
  /** Its priority class in the balancer's queue (see priorityOf). */
  priority: PriorityClass = 'interactive'
  /** Who it is for fair shares between keys: the key's name; '' while auth is off. */
  tenant = ''
  /** The key's weight in its class. */
  shareWeight = 1
  /** Set on the parts of a split batch: only instances with this digest of the model (BalancedRequest). */
  digest: string | undefined
  /** Parts the batch was sent in (proxy/batch-parts.ts), for the log; undefined: not split. */
  parts: number | undefined
  /** Why the response failed after it started, for the log. */
  error: string | undefined

  constructor(req: IncomingMessage, res: ServerResponse, id: string, route: Route, startedAt: number) {
    this.req = req
    this.res = res
    this.id = id
    this.route = route
    this.target = req.url ?? '/'
    this.startedAt = startedAt
  }

  /** The model work this request runs, if any. */
  get work(): WorkKind | undefined {
    return this.route.work
  }

  /** Whether the request can be sent again to another instance (its body was read whole). */
  get replayable(): boolean {
    return !this.route.streamsBody
  }
}
