/**
 * Hot reload as users trigger it on a real `corral serve` process: SIGHUP, `--watch` (no signal,
 * the file is saved the way editors do) and `POST /api/admin/reload`. Conditions are awaited on
 * the process's own log lines and answers, with deadlines.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, renameSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { CORRAL_BIN, nodeCommand } from '../fixtures/cli-process.js'
import { startFakeOllama, type FakeOllama } from '../fixtures/fake-ollama.js'
import { ndjson, send } from '../fixtures/http.js'
import { waitFor } from '../fixtures/wait-for.js'

const BIN = CORRAL_BIN
const dir = mkdtempSync(join(tmpdir(), 'corral-reload-process-'))
const cleanEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CORRAL_') && k !== 'OLLAMA_HOST'))
const GENERATE = { model: 'llama3.2', prompt: 'Why is the sky blue?', stream: false }

type Line = Record<string, unknown> & { msg: string; level: string }

interface Served {
  child: ChildProcess
  url: string
  lines: Line[]
  /** Resolves with the first line (from index `from` on) that matches. */
  line(what: string, match: (l: Line) => boolean, from?: number): Promise<Line>
}

async function serve(t: Test, args: string[]): Promise<Served> {
  const child = spawn(...nodeCommand([BIN, 'serve', ...args]), { env: cleanEnv })
  t.teardown(async () => {
    if (child.exitCode !== null) return
    child.kill('SIGKILL')
    await once(child, 'exit')
  })
  const lines: Line[] = []
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  createInterface({ input: child.stdout }).on('line', (l) => lines.push(JSON.parse(l) as Line))
  const line = (what: string, match: (l: Line) => boolean, from = 0): Promise<Line> =>
    waitFor(what, () => {
      if (child.exitCode !== null) throw new Error(`corral exited (${child.exitCode}): ${stderr}`)
      return lines.slice(from).find(match)
    })
  const listening = await line('the listening line', (l) => l.msg === 'listening')
  return { child, url: listening.url as string, lines, line }
}

function yamlFor(instances: Record<string, string>, extra = ''): string {
  const list = Object.entries(instances)
    .map(([name, url]) => `  - name: ${name}\n    url: ${url}\n`)
    .join('')
  return `listen: 127.0.0.1:0\nbalancer:\n  policy: round-robin\ninstances:\n${list}${extra}`
}

async function fakes(t: Test, n: number, options: Parameters<typeof startFakeOllama>[0] = {}): Promise<FakeOllama[]> {
  const started = await Promise.all(Array.from({ length: n }, (_, i) => startFakeOllama({ name: `fake-${i}`, ...options })))
  t.teardown(() => Promise.all(started.map((f) => f.close())))
  return started
}

const reloaded = (l: Line): boolean => typeof l.msg === 'string' && l.msg.startsWith('config reloaded')
const rejected = (l: Line): boolean => l.level === 'error' && l.msg.startsWith('config reload rejected')

t.test('SIGHUP reloads the file: streams in flight finish, new requests follow the new fleet', async (t) => {
  const [a, b] = await fakes(t, 2, { tokens: 30, tokenDelayMs: 15 })
  const file = join(dir, 'sighup.yaml')
  writeFileSync(file, yamlFor({ a: a!.url }))
  const corral = await serve(t, ['--config', file])
  const streams = Array.from({ length: 6 }, (_, i) =>
    request(`${corral.url}/api/generate`, { method: 'POST', body: JSON.stringify({ model: 'llama3.2', prompt: `s${i}` }) }).then((r) => r.body.text()),
  )
  await a!.waitForRequests(6, '/api/generate')
  writeFileSync(file, yamlFor({ b: b!.url }))
  const mark = corral.lines.length
  corral.child.kill('SIGHUP')
  const line = await corral.line('the reload line', reloaded, mark)
  t.match(line, { level: 'info', trigger: 'SIGHUP', changes: [`instances.b: added (${b!.url})`, `instances.a: removed (${a!.url})`] })
  for (let i = 0; i < 4; i++) t.equal((await send(corral.url, 'POST', '/api/generate', { ...GENERATE, prompt: `n${i}` })).status, 200)
  t.equal(b!.count('/api/generate'), 4, 'new requests go to the new instance')
  t.equal(a!.count('/api/generate'), 6, 'none to the removed one')
  for (const body of await Promise.all(streams)) {
    const chunks = ndjson(body)
    t.equal(chunks.length, 31, 'a stream in flight on the removed instance completed')
    t.equal(chunks.at(-1)!.done, true)
  }
  await corral.line('the removed instance closing', (l) => l.msg === 'instance removed: closed' && l.instance === 'a', mark)

  writeFileSync(file, yamlFor({ b: b!.url }, 'health:\n  interval: 10ms\n'))
  const bad = corral.lines.length
  corral.child.kill('SIGHUP')
  const error = await corral.line('the rejection line', rejected, bad)
  t.match(error.msg, 'health.interval must be at least 1000 ms, got "10ms"')
  t.same(error.problems, ['health.interval must be at least 1000 ms, got "10ms"'])
  t.equal((await send(corral.url, 'POST', '/api/generate', GENERATE)).status, 200, 'the running config keeps serving')
  t.equal(b!.count('/api/generate'), 5)
  t.equal(corral.child.exitCode, null, 'still running')
})

t.test('--watch applies a saved file without a signal; an invalid save is rejected', async (t) => {
  const [a, b] = await fakes(t, 2)
  const file = join(dir, 'watched.yaml')
  writeFileSync(file, yamlFor({ a: a!.url }))
  const corral = await serve(t, ['--config', file, '--watch'])
  await corral.line('the watch line', (l) => l.msg === 'watching the config file' && l.file === file)

  // Saved the way editors do: a new file renamed over the old one.
  let mark = corral.lines.length
  writeFileSync(`${file}.tmp`, yamlFor({ a: a!.url, b: b!.url }))
  renameSync(`${file}.tmp`, file)
  t.match(await corral.line('the reload line', reloaded, mark), { trigger: 'watch', changes: [`instances.b: added (${b!.url})`] })
  for (let i = 0; i < 4; i++) t.equal((await send(corral.url, 'POST', '/api/generate', { ...GENERATE, prompt: `w${i}` })).status, 200)
  t.same([a!.count('/api/generate'), b!.count('/api/generate')], [2, 2], 'both instances serve')

  mark = corral.lines.length
  writeFileSync(file, 'instances: [\n')
  const error = await corral.line('the rejection line', rejected, mark)
  t.match(error, { trigger: 'watch', file })
  t.match(error.msg, `${file}:`, 'names the file and the position of the YAML error')
  t.equal((await send(corral.url, 'POST', '/api/generate', GENERATE)).status, 200, 'the running config keeps serving')

  mark = corral.lines.length
  writeFileSync(file, yamlFor({ b: b!.url }, 'cache:\n  layers:\n    inference:\n      ttl: 1h\n'))
  const fixed = await corral.line('the reload line after the fix', reloaded, mark)
  t.same(fixed.changes, [`instances.a: removed (${a!.url})`, 'cache.layers.inference.ttlMs: 86400000 -> 3600000'])
  t.same(
    corral.lines.slice(mark).filter((l) => reloaded(l) || rejected(l)).length,
    1,
    'one reload for one save',
  )
})

t.test('POST /api/admin/reload: 200 with the changes, 422 for an invalid file, 409 without one', async (t) => {
  const [a, b] = await fakes(t, 2)
  const file = join(dir, 'admin.yaml')
  writeFileSync(file, yamlFor({ a: a!.url }))
  const corral = await serve(t, ['--config', file])
  const admin = (method = 'POST'): ReturnType<typeof send> => send(corral.url, method, '/api/admin/reload')

  t.same((await admin()).json, { status: 'reloaded', changes: [], restart_required: [] }, 'nothing changed')
  writeFileSync(file, yamlFor({ a: a!.url, b: b!.url }).replace('listen: 127.0.0.1:0', 'listen: 127.0.0.1:1'))
  const ok = await admin()
  t.equal(ok.status, 200)
  t.same(ok.json, { status: 'reloaded', changes: [`instances.b: added (${b!.url})`], restart_required: ['listen'] })
  const warned = await corral.line('the reload line', (l) => l.trigger === 'POST /api/admin/reload' && l.level === 'warn')
  t.equal(warned.msg, 'config reloaded; needs a restart to apply: listen')
  for (let i = 0; i < 2; i++) await send(corral.url, 'POST', '/api/generate', { ...GENERATE, prompt: `p${i}` })
  t.equal(b!.count('/api/generate'), 1, 'the added instance serves')

  writeFileSync(file, yamlFor({ a: a!.url }, 'proxy:\n  max_attempts: 0\n'))
  const invalid = await admin()
  t.equal(invalid.status, 422)
  t.same(invalid.json, { error: `invalid config in ${file}: proxy.max_attempts must be at least 1, got 0` }, "Ollama's error shape")
  t.match(await corral.line('the rejection line', rejected), { trigger: 'POST /api/admin/reload' }, 'and logged')
  t.equal((await send(corral.url, 'POST', '/api/generate', GENERATE)).status, 200, 'the running config keeps serving')

  const wrong = await admin('GET')
  t.equal(wrong.status, 405)
  t.equal(wrong.headers.allow, 'POST')
  t.match(wrong.json, { error: /use POST/ })

  const metrics = (await send(corral.url, 'GET', '/metrics')).text
  t.match(metrics, /corral_config_reloads_total\{result="ok"\} 2/)
  t.match(metrics, /corral_config_reloads_total\{result="invalid"\} 1/)

  const bare = await serve(t, ['--listen', '127.0.0.1:0', '--instances', a!.url])
  const none = await send(bare.url, 'POST', '/api/admin/reload')
  t.equal(none.status, 409)
  t.same(none.json, { error: 'corral was started without a config file: there is nothing to reload' })
})

t.test('--watch needs a config file; the help names it and SIGHUP', async (t) => {
  const child = spawn(...nodeCommand([BIN, 'serve', '--watch', '--instances', 'http://127.0.0.1:1']), { env: cleanEnv })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const [code] = (await once(child, 'close')) as [number | null]
  t.equal(code, 2)
  t.match(stderr, 'corral: --watch needs a config file (--config or CORRAL_CONFIG)')
  const help = spawn(...nodeCommand([BIN, 'serve', '--help']), { env: cleanEnv })
  let stdout = ''
  help.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  await once(help, 'close')
  t.match(stdout, /-w, --watch\s+reload the config file when it changes/)
  t.match(stdout, /kill -HUP/)
})
