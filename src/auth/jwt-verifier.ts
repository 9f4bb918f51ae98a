/**
 * JWT verification with jose: the signature (HS256/384/512 with a shared secret, RSA or ECDSA with a public
 * key or a key from a JWK Set file), the algorithm against an allow-list, `exp` (required),
 * `nbf`, and `iss`/`aud` when configured. The caller's name comes from a configured claim;
 * admin from another claim holding a configured value.
 */
import { createPublicKey, type KeyObject } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createLocalJWKSet, errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose'
import type { JwtConfig, KeyLimits } from '../config/auth-config.js'
import { JWT_NAME_PREFIX } from '../config/auth-schema.js'
import type { KeyLabels } from './key-labels.js'
import type { Principal } from '../http/principal.js'

/** Why a token was refused: `expired` (exp passed) or `invalid` (anything else). */
export type JwtFailure = { readonly reason: 'expired' | 'invalid'; readonly message: string }

export type JwtResult = { readonly principal: Principal } | { readonly failure: JwtFailure }

/** Longest name claim kept (longer ones are refused: the name goes into logs and labels). */
const MAX_NAME_LENGTH = 128

export class JwtVerifier {
  readonly #config: JwtConfig
  readonly #key: Uint8Array | KeyObject | JWTVerifyGetKey
  readonly #labels: KeyLabels
  readonly #limits: KeyLimits

  /** Reads the key material now (PEM or JWKS file); throws when it is unusable. */
  constructor(config: JwtConfig, limits: KeyLimits, labels: KeyLabels) {
    this.#config = config
    this.#limits = limits
    this.#labels = labels
    if (config.secret !== undefined) this.#key = new TextEncoder().encode(config.secret)
    else if (config.publicKey !== undefined) {
      const pem = config.publicKey.includes('-----BEGIN') ? config.publicKey : readFileSync(config.publicKey, 'utf8')
      this.#key = createPublicKey(pem)
    } else this.#key = createLocalJWKSet(JSON.parse(readFileSync(config.jwksFile!, 'utf8')) as JSONWebKeySet)
  }

  /** Verifies `token`; never rejects. */
  async verify(token: string): Promise<JwtResult> {
    const c = this.#config
    let payload: JWTPayload
    try {
      ;({ payload } = await jwtVerify(token, this.#key as Uint8Array, {
        algorithms: [...c.algorithms],
        requiredClaims: ['exp'],
        clockTolerance: c.clockToleranceSeconds,
        ...(c.issuer !== undefined ? { issuer: c.issuer } : {}),
        ...(c.audience !== undefined ? { audience: c.audience } : {}),
      }))
    } catch (err) {
      return { failure: describe(err) }
    }
    const subject = payload[c.nameClaim]
    // The name goes into logs and metric labels: no control characters (forged log lines,
    // broken exposition), and bounded.
    if (typeof subject !== 'string' || subject === '' || subject.length > MAX_NAME_LENGTH || hasControl(subject)) {
      return { failure: { reason: 'invalid', message: `token has no usable "${c.nameClaim}" claim` } }
    }
    // Subjects live in a namespace of their own: a token whose subject is a key's name shares
    // nothing with that key (limits, log name, metric label, cache partition).
    const name = `${JWT_NAME_PREFIX}${subject}`
    const principal: Principal = {
      name,
      label: this.#labels.labelOf(name),
      admin: grants(payload[c.adminClaim], c.adminValue),
      limits: this.#limits,
      cachePartition: name,
      priority: undefined,
      weight: 1,
    }
    return { principal }
  }
}

/** Whether `text` holds a C0 control character or DEL. */
function hasControl(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c < 0x20 || c === 0x7f) return true
  }
  return false
}

/** Whether a claim (space-separated string, or list of strings) holds `value`. */
function grants(claim: unknown, value: string): boolean {
  if (typeof claim === 'string') return claim.split(' ').includes(value)
  return Array.isArray(claim) && claim.includes(value)
}

/** jose's errors as a reason and a message that never repeats the token. */
function describe(err: unknown): JwtFailure {
  if (err instanceof errors.JWTExpired) return { reason: 'expired', message: 'token expired' }
  if (err instanceof errors.JWTClaimValidationFailed) {
    if (err.claim === 'nbf') return { reason: 'invalid', message: 'token not valid yet (nbf)' }
    return { reason: 'invalid', message: `token claim "${err.claim}" ${err.reason === 'missing' ? 'is missing' : 'does not match'}` }
  }
  if (err instanceof errors.JOSEAlgNotAllowed) return { reason: 'invalid', message: 'token algorithm not allowed' }
  if (err instanceof errors.JWSSignatureVerificationFailed) return { reason: 'invalid', message: 'token signature does not verify' }
  if (err instanceof errors.JWKSNoMatchingKey) return { reason: 'invalid', message: 'no key in the JWKS matches the token' }
  return { reason: 'invalid', message: 'malformed token' }
}
