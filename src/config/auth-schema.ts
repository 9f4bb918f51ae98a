/**
 * The `auth:` block of the configuration: API keys, JWT verification, per-key limits. Off unless
 * `auth.enabled` is true; then every route but `/healthz` and `/readyz` needs a key. Key material
 * (PEM files, JWKS files) is read here only to be checked; the authenticator reads it again when
 * it is built (or reconfigured), so a rotated file is picked up by a reload.
 */
import { createPublicKey } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { parseDuration } from './units.js'

const show = (value: unknown): string => JSON.stringify(value) ?? String(value)

/** Algorithms corral verifies: HMAC with a shared secret, RSA and ECDSA with a public key or a JWKS. */
export const JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'ES512'] as const
export const HMAC_ALGORITHMS: ReadonlySet<string> = new Set(['HS256', 'HS384', 'HS512'])

/**
 * Names of JWT principals (`jwt:<subject>`) start with this and API key names may not, so keys
 * and token subjects never share limits, log names, metric labels or cache entries.
 */
export const JWT_NAME_PREFIX = 'jwt:'

/** A name that is safe as a metric label and in logs. */
const KEY_NAME_RE = /^[A-Za-z0-9._:@-]{1,64}$/
const SHA256_HEX_RE = /^[0-9a-fA-F]{64}$/
/** Plain keys shorter than this are refused: a key is a secret, not a password to remember. */
export const MIN_KEY_LENGTH = 16

const limit = (description: string) =>
  z
    .number()
    .int({ error: (iss) => `must be a whole number, got ${show(iss.input)}` })
    .min(0, { error: (iss) => `must be at least 0, got ${show(iss.input)}` })
    .optional()
    .meta({ description })

const keySchema = z
  .strictObject({
    name: z
      .string()
      .regex(KEY_NAME_RE, { error: (iss) => `must be 1-64 letters, digits or . _ : @ -, got ${show(iss.input)}` })
      .meta({ description: 'Name of the key: in logs and as the `key` metric label (never the key itself); 1-64 of letters, digits and . _ : @ -, not starting with jwt:. Required, unique.' }),
    key: z
      .string()
      .min(MIN_KEY_LENGTH, { error: `must be at least ${MIN_KEY_LENGTH} characters` })
      .optional()
      .meta({ description: 'The key itself, at least 16 characters (use ${ENV_VAR}); hashed (SHA-256) at load, only the hash is kept. Set key or key_sha256.' }),
    key_sha256: z
      .string()
      .regex(SHA256_HEX_RE, { error: 'must be 64 hex digits (sha256 of the key)' })
      .optional()
      .meta({ description: 'SHA-256 of the key, 64 hex digits (`printf %s "$KEY" | sha256sum`). Set key or key_sha256.' }),
    admin: z
      .boolean()
      .default(false)
      .meta({ description: 'The key may also use admin routes (stats, metrics, cache flush, chunk metadata, model management, /api/admin/*). Default false.' }),
    rpm: limit('Requests per minute for this key; 0: unlimited. Default: auth.limits.rpm.'),
    max_concurrency: limit('Requests in flight at once for this key; 0: unlimited. Default: auth.limits.max_concurrency.'),
    priority: z
      .enum(['interactive', 'bulk'])
      .optional()
      .meta({
        description:
          'Class of every request of this key: interactive (served first) or bulk (served when no interactive request waits). Default: by the request (embedding batches of balancer.priority.bulk_batch_size inputs or more are bulk, the rest interactive).',
      }),
    weight: z
      .number()
      .positive({ error: (iss) => `must be more than 0, got ${show(iss.input)}` })
      .max(1000, { error: (iss) => `must be at most 1000, got ${show(iss.input)}` })
      .default(1)
      .meta({ description: 'The key\'s share of the fleet against other keys waiting in the same priority class (weighted fair queueing). Default 1.' }),
    cache_group: z
      .string()
      .regex(KEY_NAME_RE, { error: (iss) => `must be 1-64 letters, digits or . _ : @ -, got ${show(iss.input)}` })
      .optional()
      .meta({
        description:
          'Keys with the same cache_group share cached answers and single flights (one tenant with several keys). Default: none (the key\'s cache entries are its own).',
      }),
  })
  .superRefine((k, ctx) => {
    if ((k.key === undefined) === (k.key_sha256 === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['key'], message: 'set exactly one of key or key_sha256' })
    }
    if (k.name.startsWith(JWT_NAME_PREFIX)) {
      ctx.addIssue({ code: 'custom', path: ['name'], message: `must not start with "${JWT_NAME_PREFIX}" (the names of JWT subjects), got ${show(k.name)}` })
    }
  })
  .meta({ description: 'One API key, sent as `Authorization: Bearer <key>`.' })

/** Reads a PEM public key given inline or as a file path; returns a problem, or undefined when it is usable. */
export function publicKeyProblem(value: string): string | undefined {
  let pem = value
  if (!value.includes('-----BEGIN')) {
    try {
      pem = readFileSync(value, 'utf8')
    } catch (err) {
      return `cannot be read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`
    }
  }
  try {
    createPublicKey(pem)
    return undefined
  } catch (err) {
    return `is not a PEM public key or certificate (${err instanceof Error ? err.message : String(err)})`
  }
}

/** Reads a JWKS file; returns a problem, or undefined when it holds at least one key. */
export function jwksProblem(file: string): string | undefined {
  let jwks: unknown
  try {
    jwks = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return code !== undefined ? `cannot be read: ${code}` : 'is not JSON'
  }
  const keys = (jwks as { keys?: unknown } | null)?.keys
  if (!Array.isArray(keys) || keys.length === 0) return 'must be a JWK Set ({"keys": [...]}) with at least one key'
  return undefined
}

const jwtSchema = z
  .strictObject({
    secret: z
      .string()
      .min(32, { error: 'must be at least 32 characters (HS256 wants 256 bits)' })
      .nullish()
      .meta({ description: 'Shared secret for HS256/384/512, at least 32 characters (use ${ENV_VAR}). Set one of secret, public_key, jwks_file. Default: none.' }),
    public_key: z
      .string()
      .nullish()
      .meta({ description: 'Public key for RS*/PS*/ES*: a PEM (SPKI or certificate) inline or a path to a PEM file. Default: none.' }),
    jwks_file: z
      .string()
      .nullish()
      .meta({ description: 'Path to a JWK Set file (the `kid` in the token picks the key); re-read on reload. Default: none.' }),
    algorithms: z
      .array(z.enum(JWT_ALGORITHMS))
      .min(1, { error: 'must list at least one algorithm' })
      .nullish()
      .meta({ description: 'Accepted `alg` values; others are refused. Default: [HS256] with secret, [RS256, ES256] with public_key or jwks_file.' }),
    issuer: z.string().min(1).nullish().meta({ description: 'Required `iss` claim. Default: none (not checked).' }),
    audience: z.string().min(1).nullish().meta({ description: 'Required `aud` claim (a string or one of a list). Default: none (not checked).' }),
    name_claim: z
      .string()
      .min(1)
      .default('sub')
      .meta({ description: 'Claim whose value names the caller (logs, per-key limits, `key` metric label). Default sub.' }),
    admin_claim: z
      .string()
      .min(1)
      .default('scope')
      .meta({ description: 'Claim that grants admin: a space-separated string or a list containing admin_value. Default scope.' }),
    admin_value: z
      .string()
      .min(1)
      .default('corral:admin')
      .meta({ description: 'Value of admin_claim that grants admin routes. Default corral:admin.' }),
    clock_tolerance: z
      .union([z.string(), z.number()])
      .refine((v) => parseDuration(v) !== undefined, { error: (iss) => `must be a duration like "30s", got ${show(iss.input)}` })
      .default('30s')
      .meta({ description: 'Clock skew allowed when checking exp and nbf. Default 30s.' }),
  })
  .superRefine((j, ctx) => {
    const sources = [j.secret, j.public_key, j.jwks_file].filter((v) => v != null).length
    if (sources !== 1) ctx.addIssue({ code: 'custom', path: [], message: 'must set exactly one of secret, public_key, jwks_file' })
    const hmac = j.secret != null
    for (const alg of j.algorithms ?? []) {
      if (HMAC_ALGORITHMS.has(alg) !== hmac) {
        ctx.addIssue({
          code: 'custom',
          path: ['algorithms'],
          message: `${alg} does not fit ${hmac ? 'a shared secret (use HS256, HS384 or HS512)' : 'a public key (use RS*, PS* or ES*)'}`,
        })
      }
    }
    if (j.public_key != null) {
      const problem = publicKeyProblem(j.public_key)
      if (problem !== undefined) ctx.addIssue({ code: 'custom', path: ['public_key'], message: problem })
    }
    if (j.jwks_file != null) {
      const problem = jwksProblem(j.jwks_file)
      if (problem !== undefined) ctx.addIssue({ code: 'custom', path: ['jwks_file'], message: problem })
    }
  })
  .nullish()
  .meta({ description: 'JSON Web Tokens, sent as `Authorization: Bearer <jwt>`; exp is required, nbf, iss and aud are checked. Default: none.' })

export const authSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .meta({ description: 'Require a key (or JWT) on every route but /healthz and /readyz. Default false.' }),
    keys: z.array(keySchema).default([]).meta({ description: 'API keys. Default: none (empty).' }),
    jwt: jwtSchema,
    metrics_open: z
      .boolean()
      .default(false)
      .meta({ description: 'Serve GET /metrics without a key (on both listeners). Default false: an admin key is needed.' }),
    limits: z
      .strictObject({
        rpm: z
          .number()
          .int()
          .min(0, { error: (iss) => `must be at least 0, got ${show(iss.input)}` })
          .default(0)
          .meta({ description: 'Requests per minute per key (fixed one-minute windows); over it 429 with Retry-After. 0: unlimited. Default 0.' }),
        max_concurrency: z
          .number()
          .int()
          .min(0, { error: (iss) => `must be at least 0, got ${show(iss.input)}` })
          .default(0)
          .meta({ description: 'Requests in flight at once per key; over it 429 with Retry-After. 0: unlimited. Default 0.' }),
      })
      .prefault({})
      .meta({ description: 'Default per-key limits (a key may set its own); shared through Redis when one is configured.' }),
  })
  .superRefine((a, ctx) => {
    if (a.enabled && a.keys.length === 0 && a.jwt == null) {
      ctx.addIssue({ code: 'custom', path: ['keys'], message: 'must list at least one key when auth.enabled is true (or set auth.jwt)' })
    }
    const names = new Map<string, number>()
    a.keys.forEach((k, i) => {
      const prev = names.get(k.name)
      if (prev !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['keys', i, 'name'], message: `duplicates the name of keys[${prev}]: ${show(k.name)}` })
      } else names.set(k.name, i)
    })
  })
  .prefault({})
  .meta({ description: 'Authentication (API keys, JWT), admin scope and per-key limits. Off by default.' })
