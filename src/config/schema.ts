/**
 * The one source of truth for corral's configuration: it validates the YAML (after environment
 * interpolation and CLI/env overrides), fills every default, and is exported as JSON Schema for
 * editors (`config/corral.schema.json`). Keys are snake_case as users write them; `compileConfig`
 * turns the result into the frozen, camelCase, unit-suffixed `Config` that the code reads.
 */
import { z } from 'zod'
import { parseDuration } from './units.js'
import { show, duration, count, size, isOrigin, parseHostPort } from './schema-fields.js'
import { cacheSchema, redisSchema } from './cache-schema.js'
import { policyNames } from './policy-names.js'
import { authSchema } from './auth-schema.js'
import { parseCidr } from '../limits/cidr.js'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const


const instanceSchema = z
  .strictObject({
    url: z
      .string()
      .refine(isOrigin, {
        error: (iss) => `must be an http(s) origin without a path, got ${show(iss.input)}`,
      })
      .meta({ description: 'Origin of the Ollama instance, e.g. http://10.0.0.5:11434. Required.' }),
    name: z
      .string()
      .regex(/^[A-Za-z0-9._:-]{1,64}$/, {
        error: (iss) => `must be 1-64 letters, digits or . _ : -, got ${show(iss.input)}`,
      })
      .optional()
      .meta({ description: 'Name used in logs, metrics and stats. Default: host:port of the url.' }),
    weight: z
      .number()
      .positive({ error: (iss) => `must be a number above 0, got ${show(iss.input)}` })
      .default(1)
      .meta({ description: 'Relative capacity; a weight-2 instance is offered twice the work. Default 1.' }),
    max_concurrency: z
      .number()
      .int()
      .positive({ error: (iss) => `must be a whole number above 0, got ${show(iss.input)}` })
      .optional()
      .meta({
        description:
          'Most model requests of one kind (generations; embeddings) corral sends to this instance at once, overriding the limit corral learns from the instance\'s answers (its OLLAMA_NUM_PARALLEL, from time to first byte against requests in flight). More wait in corral\'s queue and go to whichever instance frees first. Default: unset, learned per instance and kind of work (from 2, up to 64).',
      }),
  })
  .meta({ description: 'One Ollama instance behind corral.' })


export const configSchema = z
  .strictObject({
    listen: z
      .string()
      .refine((v) => parseHostPort(v) !== undefined, {
        error: (iss) => `must be host:port (or [ipv6]:port), got ${show(iss.input)}`,
      })
      .default('127.0.0.1:11435')
      .meta({ description: 'Address corral listens on, host:port. Default 127.0.0.1:11435.' }),
    instances: z
      .array(instanceSchema)
      .min(1, { error: 'must list at least one instance' })
      .meta({
        description:
          'The Ollama instances behind corral. Default: one instance at $OLLAMA_HOST, else http://127.0.0.1:11434.',
      }),
    redis: redisSchema,
    cache: cacheSchema,
    log: z
      .strictObject({
        level: z.enum(LOG_LEVELS).default('info').meta({ description: 'pino log level. Default info.' }),
      })
      .prefault({})
      .meta({ description: 'Logging.' }),
    metrics: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .meta({ description: 'Serve Prometheus metrics at GET /metrics. Default true.' }),
        listen: z
          .string()
          .refine((v) => parseHostPort(v) !== undefined, {
            error: (iss) => `must be host:port (or [ipv6]:port), got ${show(iss.input)}`,
          })
          .nullish()
          .meta({
            description:
              'Also serve GET /metrics on this separate address, host:port (e.g. one only Prometheus can reach). Default: none (empty), /metrics is on the main listen address only.',
          }),
      })
      .prefault({})
      .meta({ description: 'Prometheus metrics.' }),
    auth: authSchema,
    balancer: z
      .strictObject({
        policy: z
          .enum(policyNames)
          .default('load-score')
          .meta({
            description:
              'How an instance is chosen for each request: load-score (predicted finish time from in-flight work, peak-EWMA speed, cold-model and failure penalties), round-robin (smooth, weighted) or least-inflight (fewest requests in flight per unit of weight). Default load-score.',
          }),
        max_queue: count(512, 'Requests that may wait in corral for a free instance slot; more get 503 with Retry-After.', 0),
        queue_timeout: duration('5m', 'Longest wait in the queue; then 503 with Retry-After.', 1),
        failure_penalty: duration(
          '5s',
          'Added to an instance\'s score for each failure (refused, timeout, 5xx, 503 busy, 429), decaying with failure_decay.',
        ),
        failure_decay: duration('10s', 'Time constant of the failure penalty\'s exponential decay.', 1),
        cold_model_penalty: duration(
          '5s',
          'Added to the score of an instance where the requested model is not loaded (from /api/ps).',
        ),
        slow_start: duration(
          '30s',
          'A recovered instance\'s weight ramps from 10% to 100% over this time instead of taking the whole queue at once. 0 turns it off.',
        ),
        affinity: z
          .strictObject({
            header: z
              .string()
              .regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/, { error: (iss) => `must be an HTTP header name, got ${show(iss.input)}` })
              .optional()
              .meta({ description: 'Request header naming a session (e.g. X-Session-Id). Default: none.' }),
            prefix_bytes: count(
              0,
              'Also key sessions on a hash of the first this-many bytes of messages/prompt (KV-cache reuse). 0 turns it off.',
              0,
            ),
            tolerance: z
              .number()
              .min(1, { error: (iss) => `must be at least 1, got ${show(iss.input)}` })
              .default(1.5)
              .meta({
                description:
                  'The session\'s previous instance is kept while its score is at most this times the best score. Default 1.5.',
              }),
          })
          .prefault({})
          .meta({ description: 'Session affinity: prefer the instance that served a session before. Off unless header or prefix_bytes is set.' }),
        priority: z
          .strictObject({
            bulk_batch_size: count(
              8,
              'An /api/embed or /v1/embeddings request with at least this many inputs is bulk (ingestion); smaller ones, generations and chats are interactive. A key\'s priority, or the X-Corral-Priority header from an admin key (or with auth off), overrides it.',
              2,
            ),
            bulk_reserve: z
              .number()
              .min(0, { error: (iss) => `must be between 0 and 1, got ${show(iss.input)}` })
              .max(1, { error: (iss) => `must be between 0 and 1, got ${show(iss.input)}` })
              .default(0.25)
              .meta({
                description:
                  'Share of each instance\'s slots that bulk requests leave free for interactive ones, rounded down (bulk always keeps one slot), held while interactive requests came in the last 10 s. 0.25 reserves nothing on 2-slot instances (half their bulk throughput), one slot of 4, two of 8. Default 0.25.',
              }),
            bulk_max_wait: duration(
              '10s',
              'A bulk request that has waited this long is served with the interactive ones (and may use the reserve), so bulk never starves.',
              1,
            ),
            bulk_part_size: count(
              16,
              'A bulk /api/embed or /v1/embeddings batch with more inputs than this is sent to the instances in parts of at most this many inputs (equal sizes), each part taking a slot of its own, while interactive requests came in the last 10 s (at most two of three batches in flight; the others go whole): a query waits for one part, not a whole batch. The client gets one answer. Smaller parts let queries in sooner and cost batch throughput (an instance does per request work once). 0 never splits.',
              0,
            ),
          })
          .prefault({})
          .meta({
            description:
              'Priority classes: waiting interactive requests are served before waiting bulk ones; within a class, keys share the fleet by their weight (auth.keys[].weight).',
          }),
      })
      .prefault({})
      .meta({ description: 'Instance selection.' }),
    health: z
      .strictObject({
        interval: duration('30s', 'Time between active checks (GET /api/version) of each instance.', 1000),
        timeout: duration('5s', 'Time an active check may take before it counts as failed.', 1),
        unhealthy_after: count(2, 'Consecutive failed active checks that mark an instance unhealthy.'),
        healthy_after: count(1, 'Consecutive passed active checks that bring an unhealthy instance back.'),
        eject_after: count(
          3,
          'Consecutive failures on real traffic that eject an instance (passive health). 0 turns passive ejection off.',
          0,
        ),
        ejection_time: duration('30s', 'First ejection time; the n-th ejection in a row lasts n times this.', 1),
        max_ejection_time: duration('5m', 'Cap on the ejection time.', 1),
        models_interval: duration('30s', 'Time between model discovery polls (/api/tags and /api/ps) of each instance.', 1000),
      })
      .prefault({})
      .meta({ description: 'Active and passive health checks, and model discovery.' }),
    proxy: z
      .strictObject({
        max_attempts: z
          .number()
          .int()
          .min(1)
          .max(10)
          .default(3)
          .meta({
            description:
              'Instances tried for one request before giving up, when a failure happens before any response byte (refused, reset, timeout, a status listed in retry_on). Default 3.',
          }),
        retry_on: z
          .array(
            z
              .number()
              .int()
              .min(400, { error: (iss) => `must be an HTTP status from 400 to 599, got ${show(iss.input)}` })
              .max(599, { error: (iss) => `must be an HTTP status from 400 to 599, got ${show(iss.input)}` }),
          )
          .default([500, 502, 503, 504])
          .meta({
            description:
              'Statuses that fail a model request (generate, chat, embed, embeddings and the /v1 twins) over to another instance when they arrive before any byte reached the client, POST included, up to max_attempts; each counts against the instance (failure penalty, passive ejection). A 503 fails over on every re-sendable route when listed. Default [500, 502, 503, 504].',
          }),
        connect_timeout: duration('5s', 'Time to open a connection to an instance.'),
        first_byte_timeout: duration(
          '5m',
          'Time from sending a request until the response headers arrive; covers a cold model load.',
        ),
        idle_timeout: duration('5m', 'Longest gap between two chunks of a response body. There is no total limit.'),
        connections_per_instance: z
          .number()
          .int()
          .positive()
          .default(128)
          .meta({ description: 'Keep-alive connections corral opens at most to one instance. Default 128.' }),
      })
      .prefault({})
      .meta({ description: 'Forwarding, failover and upstream timeouts.' }),
    limits: z
      .strictObject({
        max_body_size: z
          .strictObject({
            generation: size('32MiB', 'Largest body of /api/generate, /api/chat, /v1/chat/completions, /v1/completions (base64 images make them large). 0: no limit.'),
            embedding: size('16MiB', 'Largest body of /api/embed, /api/embeddings, /v1/embeddings (batches of text). 0: no limit.'),
            model: size('1MiB', 'Largest body of /api/show, /api/pull, /api/push, /api/create, /api/copy, /api/delete (a few hundred bytes in practice). 0: no limit.'),
            upload: size('0', 'Largest blob upload (/api/blobs/:digest, /v1 multipart); these are streamed, never held in memory, so the default is no limit. 0: no limit.'),
            other: size('32MiB', 'Largest body of any other path (read whole so it can be re-sent on failover). 0: no limit.'),
          })
          .prefault({})
          .meta({ description: 'Largest request body per kind of route; a larger body gets 413 before it reaches an instance.' }),
      })
      .prefault({})
      .meta({ description: 'Request limits.' }),
    server: z
      .strictObject({
        headers_timeout: duration('10s', 'Time a client has to send its request headers.'),
        request_timeout: duration(
          '10m',
          'Time a client has to send its whole request, body included (large blob uploads need it long).',
        ),
        keep_alive_timeout: duration(
          '2m',
          'Idle keep-alive connections from clients are closed after this; above common client pools (Go: 90s).',
        ),
        drain_timeout: duration('30s', 'On SIGTERM/SIGINT, how long in-flight requests may take to finish.'),
        max_header_size: size('16KiB', 'Largest request header block; larger ones get 431.'),
        max_connections: count(
          0,
          'Client connections open at once; a connection beyond it is closed as soon as it is accepted (as Envoy and HAProxy do), before anything is read. 0: no limit.',
          0,
        ),
        max_requests_per_client: count(
          0,
          'Requests one client address may have in flight at once (API requests; probes, metrics and stats are not counted); more get 429 with Retry-After. 0: no limit.',
          0,
        ),
        trust_proxy: z
          .union([
            z.boolean(),
            z
              .array(
                z.string().refine((v) => parseCidr(v) !== undefined, {
                  error: (iss) => `must be an IP address or CIDR like 10.0.0.0/8, got ${show(iss.input)}`,
                }),
              )
              .min(1, { error: 'must list at least one address or CIDR (or be true or false)' }),
          ])
          .default(false)
          .meta({
            description:
              'Whether X-Forwarded-For/-Proto/-Host from the client are believed. false: they are replaced by what corral sees. true: every peer is a trusted proxy. A list of addresses/CIDRs: only peers in it are; the client address is then the right-most X-Forwarded-For entry not in the list (nginx real_ip_recursive). Default false.',
          }),
      })
      .prefault({})
      .meta({ description: 'The HTTP server clients talk to.' }),
  })
  .superRefine((cfg, ctx) => {
    const headersMs = parseDuration(cfg.server.headers_timeout)
    const requestMs = parseDuration(cfg.server.request_timeout)
    if (headersMs !== undefined && requestMs !== undefined && requestMs > 0 && headersMs > requestMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['server', 'headers_timeout'],
        message: `must not be longer than server.request_timeout (${show(cfg.server.request_timeout)}), got ${show(cfg.server.headers_timeout)}`,
      })
    }
    const names = new Map<string, number>()
    const urls = new Map<string, number>()
    const listen = parseHostPort(cfg.listen)
    const metricsListen = cfg.metrics.listen == null ? undefined : parseHostPort(cfg.metrics.listen)
    if (listen && metricsListen && metricsListen.port !== 0 && metricsListen.port === listen.port && metricsListen.host === listen.host) {
      ctx.addIssue({
        code: 'custom',
        path: ['metrics', 'listen'],
        message: `must differ from listen (${show(cfg.listen)}); /metrics is served there anyway, got ${show(cfg.metrics.listen)}`,
      })
    }
    cfg.instances.forEach((instance, i) => {
      if (!isOrigin(instance.url)) return
      const url = new URL(instance.url)
      const name = instance.name ?? url.host
      const prevName = names.get(name)
      if (prevName !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['instances', i, 'name'],
          message: `duplicates the name of instances[${prevName}]: ${show(name)}`,
        })
      } else names.set(name, i)
      const origin = url.origin
      const prevUrl = urls.get(origin)
      if (prevUrl !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['instances', i, 'url'],
          message: `duplicates the url of instances[${prevUrl}]: ${show(origin)}`,
        })
      } else urls.set(origin, i)
      if (listen && listen.port !== 0 && Number(url.port || (url.protocol === 'https:' ? 443 : 80)) === listen.port && sameHost(url.hostname, listen.host)) {
        ctx.addIssue({
          code: 'custom',
          path: ['instances', i, 'url'],
          message: `points at corral's own listen address ${cfg.listen}; that would loop (is OLLAMA_HOST set to corral?)`,
        })
      }
    })
  })

/** Whether an instance host reaches the listen host: equal, both loopback, or listening on all addresses. */
function sameHost(instanceHost: string, listenHost: string): boolean {
  const loopback = (h: string): boolean => h === 'localhost' || h.startsWith('127.') || h === '[::1]' || h === '::1'
  const wildcard = listenHost === '0.0.0.0' || listenHost === '::'
  return instanceHost === listenHost || (loopback(instanceHost) && (loopback(listenHost) || wildcard))
}

/** The configuration as written in YAML, with every default filled in. */
export type ConfigFile = z.output<typeof configSchema>
