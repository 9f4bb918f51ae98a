/**
 * JWTs against a real corral: HS256 with a shared secret, RS256 and ES256 with a PEM public key
 * (inline and as a file), a JWKS file; expired, not yet valid, wrong issuer or audience, an
 * algorithm not allowed, a bad signature; the name and admin claims. Keys are generated here
 * with jose.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type JWTPayload } from 'jose'
import t, { type Test } from 'tap'
import { configFromObject } from '../../src/config/load-config.js'
import { startFakeOllama, type FakeOllama } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { startCorral } from '../fixtures/start-corral.js'

const SECRET = 'a-shared-secret-of-at-least-32-characters!'
const ISSUER = 'https://idp.example'
const AUDIENCE = 'corral'
const dir = mkdtempSync(join(tmpdir(), 'corral-jwt-'))
const now = (): number => Math.floor(Date.now() / 1000)

interface SignOptions {
  alg: string
  key: Parameters<SignJWT['sign']>[0]
  claims?: JWTPayload
  kid?: string
}

function sign({ alg, key, claims = {}, kid }: SignOptions): Promise<string> {
  return new SignJWT({ sub: 'svc-a', iss: ISSUER, aud: AUDIENCE, exp: now() + 600, iat: now(), ...claims })
    .setProtectedHeader(kid !== undefined ? { alg, kid } : { alg })
    .sign(key)
}

const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` })

async function fakeFor(t: Test): Promise<FakeOllama> {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  return fake
}

t.test('HS256: claims checked, name and admin taken from claims', async (t) => {
  const fake = await fakeFor(t)
  const { url, logs, corral } = await startCorral(t, [fake.url], {
    auth: { enabled: true, jwt: { secret: SECRET, issuer: ISSUER, audience: AUDIENCE } },
  })
  const key = new TextEncoder().encode(SECRET)
  const tags = (token: string): ReturnType<typeof send> => send(url, 'GET', '/api/tags', undefined, bearer(token))

  const good = await sign({ alg: 'HS256', key })
  t.equal((await tags(good)).status, 200, 'a valid token')
  const gen = await send(url, 'POST', '/api/generate', { model: 'llama3.2', prompt: 'x', stream: false }, bearer(good))
  t.equal(gen.status, 200)
  t.equal((await send(url, 'GET', '/api/load-balancer-stats', undefined, bearer(good))).status, 403, 'no admin scope')
  const admin = await sign({ alg: 'HS256', key, claims: { scope: 'openid corral:admin' } })
  t.equal((await send(url, 'GET', '/api/load-balancer-stats', undefined, bearer(admin))).status, 200, 'scope holds corral:admin')
  const adminList = await sign({ alg: 'HS256', key, claims: { scope: ['corral:admin'] } })
  t.equal((await send(url, 'GET', '/api/load-balancer-stats', undefined, bearer(adminList))).status, 200, 'a list claim too')

  const cases: [string, Promise<string>, RegExp, string][] = [
    ['expired', sign({ alg: 'HS256', key, claims: { exp: now() - 120 } }), /^unauthorized: token expired$/, 'expired'],
    ['not yet valid', sign({ alg: 'HS256', key, claims: { nbf: now() + 300 } }), /not valid yet \(nbf\)/, 'invalid'],
    ['wrong issuer', sign({ alg: 'HS256', key, claims: { iss: 'https://evil.example' } }), /claim "iss" does not match/, 'invalid'],
    ['wrong audience', sign({ alg: 'HS256', key, claims: { aud: 'someone-else' } }), /claim "aud" does not match/, 'invalid'],
    ['no exp', new SignJWT({ sub: 'svc-a', iss: ISSUER, aud: AUDIENCE }).setProtectedHeader({ alg: 'HS256' }).sign(key), /claim "exp" is missing/, 'invalid'],
    ['another secret', sign({ alg: 'HS256', key: new TextEncoder().encode('x'.repeat(40)) }), /signature does not verify/, 'invalid'],
    ['HS512 not allowed', sign({ alg: 'HS512', key: new TextEncoder().encode(SECRET.repeat(2)) }), /algorithm not allowed/, 'invalid'],
    ['no name claim', sign({ alg: 'HS256', key, claims: { sub: undefined } }), /no usable "sub" claim/, 'invalid'],
    ['alg none', Promise.resolve(`${b64({ alg: 'none' })}.${b64({ sub: 'x', exp: now() + 60 })}.`), /algorithm not allowed|malformed/, 'invalid'],
  ]
  for (const [what, token, message, reason] of cases) {
    const answer = await tags(await token)
    t.equal(answer.status, 401, what)
    t.match(answer.json, { error: message }, what)
    t.equal(answer.headers['www-authenticate'], 'Bearer realm="corral", error="invalid_token"', what)
    t.equal(logs.at(-1)?.reason, reason, `${what}: logged as ${reason}`)
  }
  await corral.proxy.whenIdle()
  t.equal(logs.find((l) => l.msg === 'request' && l.route === 'generate')?.key, 'jwt:svc-a', 'the name claim names the caller, in the JWT namespace')
  t.notOk(JSON.stringify(logs).includes(good.split('.')[2]!), 'no token in the log')
})

t.test('RS256 and ES256 with a PEM public key (inline, or a file)', async (t) => {
  const fake = await fakeFor(t)
  const rsa = await generateKeyPair('RS256')
  const ec = await generateKeyPair('ES256')
  const rsaPem = await exportSPKI(rsa.publicKey)
  const ecFile = join(dir, 'ec.pem')
  writeFileSync(ecFile, await exportSPKI(ec.publicKey))

  const rs = await startCorral(t, [fake.url], { auth: { enabled: true, jwt: { public_key: rsaPem, name_claim: 'client_id' } } })
  const rsToken = await sign({ alg: 'RS256', key: rsa.privateKey, claims: { client_id: 'rag' } })
  t.equal((await send(rs.url, 'GET', '/api/tags', undefined, bearer(rsToken))).status, 200, 'RS256')
  const other = await generateKeyPair('RS256')
  t.equal((await send(rs.url, 'GET', '/api/tags', undefined, bearer(await sign({ alg: 'RS256', key: other.privateKey, claims: { client_id: 'x' } })))).status, 401, 'signed by another key')
  const hsForged = await sign({ alg: 'HS256', key: new TextEncoder().encode(rsaPem), claims: { client_id: 'x' } })
  t.match((await send(rs.url, 'GET', '/api/tags', undefined, bearer(hsForged))).json, { error: /algorithm not allowed/ }, 'HS256 signed with the public key is refused')

  const es = await startCorral(t, [fake.url], { auth: { enabled: true, jwt: { public_key: ecFile, algorithms: ['ES256'] } } })
  t.equal((await send(es.url, 'GET', '/api/tags', undefined, bearer(await sign({ alg: 'ES256', key: ec.privateKey })))).status, 200, 'ES256 from a PEM file')
  const rsOnEs = await send(es.url, 'GET', '/api/tags', undefined, bearer(await sign({ alg: 'RS256', key: rsa.privateKey })))
  t.equal(rsOnEs.status, 401, 'RS256 where only ES256 is allowed')
})

t.test('a JWKS file: the kid picks the key', async (t) => {
  const fake = await fakeFor(t)
  const one = await generateKeyPair('ES256')
  const two = await generateKeyPair('RS256')
  const file = join(dir, 'jwks.json')
  writeFileSync(file, JSON.stringify({ keys: [{ ...(await exportJWK(one.publicKey)), kid: 'one', alg: 'ES256' }, { ...(await exportJWK(two.publicKey)), kid: 'two', alg: 'RS256' }] }))
  const { url } = await startCorral(t, [fake.url], { auth: { enabled: true, jwt: { jwks_file: file, audience: AUDIENCE } } })
  t.equal((await send(url, 'GET', '/api/tags', undefined, bearer(await sign({ alg: 'ES256', key: one.privateKey, kid: 'one' })))).status, 200, 'kid one')
  t.equal((await send(url, 'GET', '/api/tags', undefined, bearer(await sign({ alg: 'RS256', key: two.privateKey, kid: 'two' })))).status, 200, 'kid two')
  const unknown = await send(url, 'GET', '/api/tags', undefined, bearer(await sign({ alg: 'ES256', key: one.privateKey, kid: 'three' })))
  t.equal(unknown.status, 401)
  t.match(unknown.json, { error: /no key in the JWKS matches/ })
})

t.test('JWT settings are checked at load', async (t) => {
  const problems = (jwt: Record<string, unknown>): string[] => {
    try {
      configFromObject({ auth: { enabled: true, jwt } })
      return []
    } catch (err) {
      return [...(err as { problems: string[] }).problems]
    }
  }
  t.match(problems({}), ['auth.jwt must set exactly one of secret, public_key, jwks_file'])
  t.match(problems({ secret: 'short' }), ['auth.jwt.secret must be at least 32 characters (HS256 wants 256 bits)'])
  t.match(problems({ secret: SECRET, algorithms: ['RS256'] }), [/auth\.jwt\.algorithms RS256 does not fit a shared secret/])
  t.match(problems({ public_key: join(dir, 'missing.pem') }), ['auth.jwt.public_key cannot be read: ENOENT'])
  t.match(problems({ public_key: '-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----' }), [/auth\.jwt\.public_key is not a PEM public key/])
  const notJwks = join(dir, 'not.json')
  writeFileSync(notJwks, '{"keys": []}')
  t.match(problems({ jwks_file: notJwks }), [/auth\.jwt\.jwks_file must be a JWK Set/])
  t.same(problems({ secret: SECRET }), [])
})

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}
