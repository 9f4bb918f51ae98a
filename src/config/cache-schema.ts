/**
 * The `cache` and `redis` sections of the config schema (see schema.ts).
 */
import { z } from 'zod'
import { show, duration, size, parseHostPort } from './schema-fields.js'

/** Cache layer names, in the order stats list them. */
export const CACHE_LAYERS = ['embedding', 'chunk', 'inference'] as const
/** When generations (`/api/generate`, `/api/chat` and the `/v1` twins) are cached. */
export const INFERENCE_POLICIES = ['deterministic', 'always', 'off'] as const

function layerSchema(ttl: string, what: string) {
  return z
    .strictObject({
      enabled: z.boolean().default(true).meta({ description: `Cache ${what}. Default true.` }),
      ttl: duration(ttl, 'How long an entry is kept.'),
    })
    .prefault({})
    .meta({ description: `The layer of ${what}.` })
}

export const redisSchema = z
  .strictObject({
    url: z
      .string()
      .refine((v) => /^rediss?:\/\/[^\s]+$/.test(v), {
        error: (iss) => `must be a redis:// or rediss:// URL, got ${show(iss.input)}`,
      })
      .nullish()
      .meta({ description: 'redis:// or rediss:// URL of a single Redis node. Secrets: use ${ENV_VAR}. Default: none (empty).' }),
    sentinels: z
      .array(
        z.string().refine((v) => parseHostPort(v) !== undefined, {
          error: (iss) => `must be host:port, got ${show(iss.input)}`,
        }),
      )
      .min(1, { error: 'must list at least one sentinel' })
      .nullish()
      .meta({ description: 'Redis Sentinel addresses (host:port); needs `name`. Default: none (empty).' }),
    name: z
      .string()
      .min(1)
      .nullish()
      .meta({ description: 'Name of the master the sentinels watch (with `sentinels`). Default: none (empty).' }),
    cluster: z
      .array(
        z.string().refine((v) => /^rediss?:\/\/[^\s]+$/.test(v), {
          error: (iss) => `must be a redis:// or rediss:// URL, got ${show(iss.input)}`,
        }),
      )
      .min(1, { error: 'must list at least one node' })
      .nullish()
      .meta({ description: 'Redis Cluster seed nodes (redis:// URLs). Default: none (empty).' }),
    password: z
      .string()
      .nullish()
      .meta({ description: 'Password for sentinel-managed or cluster nodes (a url carries its own). Default: none (empty).' }),
    tls: z.boolean().default(false).meta({ description: 'Use TLS for sentinel-managed or cluster nodes (rediss:// urls imply it). Default false.' }),
    command_timeout: duration('50ms', 'Longest wait for one Redis command; a slower Redis counts as failing and the request is answered as a miss.'),
    retry_interval: duration('1s', 'While Redis is failing it is skipped; it is probed again after this long.'),
    key_prefix: z
      .string()
      .regex(/^[A-Za-z0-9:._-]{1,64}$/, { error: (iss) => `must be 1-64 letters, digits or : . _ -, got ${show(iss.input)}` })
      .default('corral:')
      .meta({ description: 'Prefix of every key corral writes; flushes delete only keys with it. Default corral:.' }),
    local_cache_size: size(
      '32MiB',
      'In-process tier in front of Redis (hot entries served without a round trip), counted as cache.memory.max_size is; 0 turns it off.',
    ),
    local_ttl: duration('5m', 'Longest time an entry stays in the in-process tier (other replicas may flush or rewrite Redis meanwhile).'),
    single_flight: z
      .boolean()
      .default(false)
      .meta({
        description:
          'Single flight across replicas: an identical generation in flight on another replica is waited for (a short Redis lock per key, SET NX PX) instead of sent upstream again. Needs cache.single_flight. Default false.',
      }),
    lock_ttl: duration('30s', 'Longest a replica waits for another replica\'s generation (the lock expires then) before sending its own.'),
  })
  .superRefine((r, ctx) => {
    const modes = [r.url, r.sentinels, r.cluster].filter((v) => v != null).length
    if (modes === 0) ctx.addIssue({ code: 'custom', path: ['url'], message: 'is required (or sentinels with name, or cluster)' })
    if (modes > 1) ctx.addIssue({ code: 'custom', path: [], message: 'must set only one of url, sentinels, cluster' })
    if (r.sentinels != null && r.name == null) ctx.addIssue({ code: 'custom', path: ['name'], message: 'is required with sentinels' })
  })
  .optional()
  .meta({ description: 'Redis for the shared cache. Default: none (the cache lives in process memory).' })

export const cacheSchema = z
  .strictObject({
    enabled: z.boolean().default(true).meta({ description: 'Cache answers at all. Default true.' }),
    response_header: z
      .boolean()
      .default(true)
      .meta({ description: 'Add X-Corral-Cache: hit | miss | bypass | coalesced to answers. Default true.' }),
    max_entry_size: size('8MiB', 'Largest answer kept; larger ones are relayed and not stored.'),
    single_flight: z
      .boolean()
      .default(true)
      .meta({ description: 'Identical cacheable requests in flight at once reach an instance once; the others wait for its answer. Default true.' }),
    share_across_keys: z
      .boolean()
      .default(false)
      .meta({
        description:
          'With auth on, cached answers and single flights are shared by every key (a hit for one key is a hit for all). Default false: each key (or cache_group of keys, or JWT subject) has its own entries.',
      }),
    memory: z
      .strictObject({
        max_size: size(
          '256MiB',
          'Bytes the in-memory store may hold (without Redis), counting each entry\'s value, key and bookkeeping (about 4 KB for a 768-d vector); an eighth of it keeps the rendered JSON of hot vectors. Least recently used entries go first.',
        ),
      })
      .prefault({})
      .meta({ description: 'The in-memory store (used when no Redis is configured).' }),
    layers: z
      .strictObject({
        embedding: layerSchema('7d', 'query embeddings (/api/embeddings, and /api/embed or /v1/embeddings with one input)'),
        chunk: layerSchema('30d', 'document-chunk embeddings (batches of inputs) and chunk metadata'),
        inference: z
          .strictObject({
            enabled: z.boolean().default(true).meta({ description: 'Cache generations. Default true.' }),
            ttl: duration('24h', 'How long an entry is kept.'),
            policy: z
              .enum(INFERENCE_POLICIES)
              .default('deterministic')
              .meta({
                description:
                  'deterministic: only requests with options.seed set or temperature 0; always: every generation (identical prompt, identical answer); off: none. Default deterministic.',
              }),
          })
          .prefault({})
          .meta({ description: 'The layer of generations (/api/generate, /api/chat, /v1/chat/completions, /v1/completions).' }),
      })
      .prefault({})
      .meta({ description: 'The three cache layers, each with its TTL.' }),
  })
  .prefault({})
  .meta({ description: 'The response cache.' })
