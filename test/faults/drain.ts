/**
 * Fault scenario: corral receives SIGTERM under load. A real `corral serve` process (bin/corral.js,
 * built by `npm test`) in front of three instances behind fault proxies carries long streams when
 * it gets SIGTERM: it stops accepting at once (a new connection is refused), every stream in
 * flight runs to its end within `server.drain_timeout`, and it exits 0 leaving no connection to
 * the instances.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import t from 'tap'
import { Agent } from 'undici'
import { CORRAL_BIN, nodeCommand } from '../fixtures/cli-process.js'
import { sendOne, Tally } from '../fixtures/fault-load.js'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { startFaultProxy } from '../fixtures/fault-proxy.js'
import { assertNoOpenSockets, until, within } from '../fixtures/fault-scene.js'

const BIN = CORRAL_BIN
const STREAMS = 24

t.test('SIGTERM under load: new connections refused, streams in flight complete, exit 0', async (t) => {
  // 25 tokens 40 ms apart: each stream lasts about a second, well inside the 30 s drain budget
  // even on a busy machine.
  const fakes = await Promise.all([0, 1, 2].map(() => startFakeOllama({ tokens: 25, tokenDelayMs: 40, numParallel: 8 })))
  t.teardown(() => Promise.all(fakes.map((f) => f.close())))
  const proxies = await Promise.all(fakes.map((f) => startFaultProxy(f.port)))
  t.teardown(() => Promise.all(proxies.map((p) => p.close())))
  const dir = mkdtempSync(join(tmpdir(), 'corral-drain-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const config = join(dir, 'corral.yaml')
  writeFileSync(
    config,
    [
      'listen: 127.0.0.1:0',
      'instances:',
      ...proxies.map((p, i) => `  - { url: "${p.url}", name: i${i}, max_concurrency: 8 }`),
      'cache: { enabled: false }',
      'server: { drain_timeout: 30s }',
      '',
    ].join('\n'),
  )
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CORRAL_') && k !== 'OLLAMA_HOST'))
  const child = spawn(...nodeCommand([BIN, 'serve', '--config', config]), { env, stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  const logs: Record<string, unknown>[] = []
  const logged = new EventTarget()
  createInterface({ input: child.stdout }).on('line', (line) => {
    logs.push(JSON.parse(line) as Record<string, unknown>)
    logged.dispatchEvent(new Event('line'))
  })
  const waitForLog = async (msg: string): Promise<Record<string, unknown>> => {
    for (;;) {
      const found = logs.find((l) => l.msg === msg)
      if (found !== undefined) return found
      await once(logged, 'line')
    }
  }
  const exited = once(child, 'exit') as Promise<[number | null, string | null]>
  const url = (await within(waitForLog('listening'), 'corral listening')).url as string

  const dispatcher = new Agent({ connections: STREAMS })
  const streams = Array.from({ length: STREAMS }, (_, i) =>
    sendOne(dispatcher, url, i % 2 === 0 ? 'generate-stream' : 'chat-stream', `drain-${i}`, 60_000),
  )
  await until(() => fakes.reduce((n, f) => n + f.inFlight, 0) >= STREAMS, 'every stream under way')
  child.kill('SIGTERM')
  const draining = await within(waitForLog('draining'), 'draining logged')
  t.equal(draining.in_flight, STREAMS, 'every stream was in flight at SIGTERM')

  // Listening stopped at once: a new connection is refused.
  const port = Number(new URL(url).port)
  const probe = connect(port, '127.0.0.1')
  const [err] = (await once(probe, 'error')) as [NodeJS.ErrnoException]
  t.equal(err.code, 'ECONNREFUSED', 'a new connection is refused while draining')

  const answers = await Promise.all(streams)
  await dispatcher.close()
  const tally = new Tally('SIGTERM under load')
  answers.forEach((a, index) => {
    tally.sent++
    tally.record({ index, ...a })
  })
  t.comment(tally.line())
  t.equal(tally.ok, STREAMS, 'every stream in flight ran to its end')
  const [code, signal] = await within(exited, 'corral exited', 40_000)
  t.equal(code, 0, 'exit 0')
  t.equal(signal, null)
  t.notOk(logs.some((l) => l.msg === 'drain timeout: closing remaining connections'), 'within the drain timeout')
  t.ok(logs.some((l) => l.msg === 'stopped'))
  await within(Promise.all(proxies.map((p) => p.until((s) => s.open === 0))), 'no connection to the instances')
  t.same(proxies.map((p) => p.open), [0, 0, 0], 'no connection left to any instance')
  t.same(fakes.map((f) => f.inFlight), [0, 0, 0])
})

assertNoOpenSockets(t)
