/**
 * Invalid-config messages never repeat a secret: a Redis URL's password, an instance URL's
 * `user:pass@`, a JWT secret or API key given in the wrong shape are masked in `check-config`,
 * in the reload's 422 body and in the log. Secret-looking query parameters are masked in the
 * request log.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError, configFromObject, loadConfig } from '../../src/config/load-config.js'
import { logTarget } from '../../src/observability/log-target.js'
import { runCli } from '../fixtures/cli-process.js'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { startCorral } from '../fixtures/start-corral.js'

const SECRETS = ['hunter2redis', 's3cretpass', 'jwt-secret-given-as-the-whole-block-0123456789', '98765432109876543210', 'plain-key-in-a-list-000000']
const dir = mkdtempSync(join(tmpdir(), 'corral-masking-'))

/** A config with every secret in a wrong place or shape. */
const BAD_YAML = `listen: 127.0.0.1:0
instances:
  - url: http://admin:s3cretpass@gpu1:11434/api
redis:
  url: http://default:hunter2redis@redis:6379
auth:
  enabled: true
  jwt: jwt-secret-given-as-the-whole-block-0123456789
  keys:
    - name: a
      key: 98765432109876543210
    - plain-key-in-a-list-000000
`

function problemsOf(load: () => unknown): { problems: readonly string[]; message: string } {
  try {
    load()
  } catch (err) {
    if (err instanceof ConfigError) return { problems: err.problems, message: err.message }
    throw err
  }
  throw new Error('the config was accepted')
}

t.test('loading: every problem is reported, no secret repeated', async (t) => {
  const file = join(dir, 'bad.yaml')
  writeFileSync(file, BAD_YAML)
  const { problems, message } = problemsOf(() => loadConfig({ file, env: {} }))
  const named = ['instances[0].url must be an http(s) origin', 'redis.url must be a redis://', 'auth.keys[0].key must be a string', 'auth.keys[1] must be a mapping', 'auth.jwt must be a mapping']
  for (const start of named) t.ok(problems.some((p) => p.startsWith(start)), `still named: ${start}`)
  for (const secret of SECRETS) t.notOk(message.includes(secret), `${secret} is not in the message`)
  t.match(message, /admin:\*\*\*@gpu1/, 'the user stays, the password is masked')
})

t.test('a password in a URL anywhere in a message is masked', async (t) => {
  const { message } = problemsOf(() => configFromObject({ instances: [{ url: 'http://127.0.0.1:1' }], redis: { cluster: ['redis://:hunter2redis@a:1', 'nope'] } }))
  t.notOk(message.includes('hunter2redis'))
})

t.test('check-config prints the problems masked', async (t) => {
  const file = join(dir, 'check.yaml')
  writeFileSync(file, BAD_YAML)
  const run = await runCli(['check-config', file])
  t.equal(run.code, 2, run.stderr)
  t.match(run.stderr, /invalid configuration/)
  for (const secret of SECRETS) t.notOk(run.stderr.includes(secret) || run.stdout.includes(secret), `${secret} is not printed`)
})

t.test('a reload of a bad file: the 422 body and the log are masked', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const file = join(dir, 'reload.yaml')
  writeFileSync(file, `listen: 127.0.0.1:0\ninstances:\n  - url: ${fake.url}\n`)
  const configSource = { file, load: () => loadConfig({ file, env: {} }).config }
  const { url, logs } = await startCorral(t, [fake.url], {}, { configSource })
  writeFileSync(file, BAD_YAML)
  const res = await send(url, 'POST', '/api/admin/reload')
  t.equal(res.status, 422)
  t.match(res.json, { error: /^invalid config in / })
  const logged = JSON.stringify(logs)
  t.match(logged, /config reload rejected/)
  for (const secret of SECRETS) {
    t.notOk(res.text.includes(secret), `${secret} is not in the 422 body`)
    t.notOk(logged.includes(secret), `${secret} is not in the log`)
  }
})

t.test('secret-looking query parameters are masked in the request log', async (t) => {
  t.equal(logTarget('/api/tags'), '/api/tags')
  t.equal(logTarget('/api/tags?x=1'), '/api/tags?x=1')
  t.equal(logTarget('/v1/models?api_key=sk-123&x=1&Token=abc&access_token=z&KEY=k'), '/v1/models?api_key=***&x=1&Token=***&access_token=***&KEY=***')
  t.equal(logTarget('/x?api%5Fkey=sk-1'), '/x?api%5Fkey=***', 'an encoded name too')

  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, logs, corral } = await startCorral(t, [fake.url])
  await send(url, 'GET', '/api/tags?key=sk-leaked-1&token=sk-leaked-2&api_key=sk-leaked-3&access_token=sk-leaked-4')
  await corral.proxy.whenIdle()
  const line = logs.find((l) => l.msg === 'request' && l.route === 'tags')
  t.equal(line?.path, '/api/tags?key=***&token=***&api_key=***&access_token=***')
  t.notOk(JSON.stringify(logs).includes('sk-leaked'), 'no value in any log line')
})
