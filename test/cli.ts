/**
 * The `corral` command as users run it: a real process, its exit codes and output.
 * (`npm test` builds dist/ first; bin/corral.js runs it.)
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { CORRAL_BIN, cleanEnv, nodeCommand, runCli } from './fixtures/cli-process.js'
import { startFakeOllama } from './fixtures/fake-ollama.js'
import { ndjson, send } from './fixtures/http.js'

const BIN = CORRAL_BIN
const dir = mkdtempSync(join(tmpdir(), 'corral-cli-'))
const run = runCli

/** Starts `corral serve` and resolves with its URL once its `listening` log line appears. */
async function serve(t: Test, args: string[]): Promise<{ child: ChildProcess; url: string; lines: Record<string, unknown>[] }> {
  const child = spawn(...nodeCommand([BIN, 'serve', ...args]), { env: cleanEnv })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  const lines: Record<string, unknown>[] = []
  const rl = createInterface({ input: child.stdout })
  const url = await new Promise<string>((resolve, reject) => {
    rl.on('line', (line) => {
      const parsed = JSON.parse(line) as Record<string, unknown>
      lines.push(parsed)
      if (parsed.msg === 'listening') resolve(parsed.url as string)
    })
    child.once('exit', (code) => reject(new Error(`corral exited with ${code}`)))
  })
  return { child, url, lines }
}

t.test('--version and --help', async (t) => {
  const version = await run(['--version'])
  t.equal(version.code, 0)
  t.match(version.stdout, /^\d+\.\d+\.\d+\n$/)
  const help = await run(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /check-config/)
  t.match(help.stdout, /Examples:/)
  t.match(help.stdout, /OLLAMA_HOST=http:\/\/127\.0\.0\.1:11435/)
  const serveHelp = await run(['serve', '--help'])
  t.match(serveHelp.stdout, /--instances <urls>/)
  t.match(serveHelp.stdout, /--redis <url>/)
})

t.test('check-config prints the effective config, secrets masked', async (t) => {
  const file = join(dir, 'ok.yaml')
  writeFileSync(file, 'instances:\n  - url: http://gpu:11434\nredis:\n  url: redis://:${PW}@r:6379\n')
  const res = await run(['check-config', file], { PW: 'hunter2' })
  t.equal(res.code, 0)
  t.match(res.stdout, /listen: 127\.0\.0\.1:11435/)
  t.match(res.stdout, /url: redis:\/\/:\*\*\*@r:6379/)
  t.notMatch(res.stdout, /hunter2/)
  t.match(res.stdout, /first_byte_timeout: 5m/, 'defaults filled')
})

t.test('check-config on an invalid file: every problem, exit 2, no stack trace', async (t) => {
  const file = join(dir, 'bad.yaml')
  writeFileSync(file, 'listen: nowhere\ninstances:\n  - url: http://a:1\n  - url: http://b:1/v1\n')
  const res = await run(['check-config', file])
  t.equal(res.code, 2)
  t.match(res.stderr, `corral: invalid configuration in ${file}:`)
  t.match(res.stderr, '  - listen must be host:port (or [ipv6]:port), got "nowhere"')
  t.match(res.stderr, '  - instances[1].url must be an http(s) origin without a path, got "http://b:1/v1"')
  t.notMatch(res.stderr, /\n\s+at /, 'no stack trace')
  const missing = await run(['check-config', join(dir, 'nope.yaml')])
  t.equal(missing.code, 2)
  t.match(missing.stderr, /nope\.yaml: no such file/)
})

t.test('serve refuses an invalid config the same way', async (t) => {
  const res = await run(['serve', '--listen', 'bad', '--instances', 'ftp://x'])
  t.equal(res.code, 2)
  t.match(res.stderr, 'listen must be host:port')
  t.match(res.stderr, 'instances[0].url must be an http(s) origin without a path, got "ftp://x"')
  const env = await run([], { CORRAL_LISTEN: 'also bad' })
  t.equal(env.code, 2, 'the default command is serve; env is read')
  t.match(env.stderr, 'listen must be host:port (or [ipv6]:port), got "also bad"')
  const level = await run(['--log-level', 'loud'])
  t.not(level.code, 0)
  t.match(level.stderr, /Allowed choices are fatal, error, warn, info, debug, trace, silent/)
})

t.test('serve proxies, then drains on SIGTERM and exits 0', async (t) => {
  const fake = await startFakeOllama({ tokenDelayMs: 25, tokens: 20 })
  t.teardown(() => fake.close())
  const { child, url, lines } = await serve(t, ['--listen', '127.0.0.1:0', '--instances', fake.url])
  t.equal((await send(url, 'GET', '/api/version')).status, 200)
  const res = await request(`${url}/api/generate`, { method: 'POST', body: '{"model":"llama3.2","prompt":"x"}' })
  const body = res.body.text()
  await fake.waitForRequests(1, '/api/generate')
  child.kill('SIGTERM')
  const [code] = (await once(child, 'exit')) as [number | null]
  t.equal(code, 0, 'exit 0 after draining')
  t.equal(ndjson(await body).at(-1)!.done, true, 'the stream in flight finished')
  t.ok(lines.some((l) => l.msg === 'draining' && l.signal === 'SIGTERM'))
  t.ok(lines.some((l) => l.msg === 'request' && l.route === 'generate' && l.status === 200), 'request logged')
})

t.test('serve reports a busy port clearly', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const res = await run(['serve', '--listen', `127.0.0.1:${fake.port}`, '--instances', 'http://127.0.0.1:1'])
  t.equal(res.code, 1)
  t.match(res.stderr, `corral: cannot listen on 127.0.0.1:${fake.port}: the address is already in use`)
})
