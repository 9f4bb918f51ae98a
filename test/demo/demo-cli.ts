/**
 * `corral demo` as a user runs it: the real CLI in a child process, curled through corral. Chat
 * streams token by token, embeddings work, a repeat is a cache hit, the stats show the fleet, and
 * SIGTERM stops everything with status 0. `--fleet-only` runs the fleet and its control channel.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { once } from 'node:events'
import type { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { CORRAL_BIN, cleanEnv, nodeCommand } from '../fixtures/cli-process.js'

interface DemoJson {
  corral?: string
  control?: string
  slots: number
  instances: Array<{ name: string; url: string; speed: number }>
}

type Child = ChildProcessByStdio<null, Readable, Readable>

/** Starts `corral demo ...args --json` and resolves with its JSON line; the test stops it on teardown. */
async function startDemo(t: Test, args: readonly string[]): Promise<{ child: Child; info: DemoJson; stderr: () => string }> {
  const child = spawn(...nodeCommand([CORRAL_BIN, 'demo', '--json', ...args]), { env: cleanEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const line = await new Promise<string>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`corral demo printed no JSON line in 15 s: ${out}${stderr}`)), 15_000)
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      const end = out.indexOf('\n')
      if (end !== -1) {
        clearTimeout(timer)
        resolve(out.slice(0, end))
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`corral demo exited (${code}): ${out}${stderr}`))
    })
  })
  return { child, info: JSON.parse(line) as DemoJson, stderr: () => stderr }
}

async function stop(child: Child): Promise<number | null> {
  const exited = once(child, 'exit') as Promise<[number | null]>
  child.kill('SIGTERM')
  const [code] = await exited
  return code
}

const FAST = ['--prompt-ms', '5', '--token-ms', '2', '--embed-ms', '1', '--tokens', '6']

t.test('corral demo: a fleet behind corral that streams, embeds, caches and balances', async (t) => {
  const { child, info } = await startDemo(t, ['--port', '0', '--instances', '3', ...FAST])
  const corral = info.corral ?? ''
  t.match(corral, /^http:\/\/127\.0\.0\.1:\d+$/)
  t.equal(info.instances.length, 3)
  t.same(info.instances.map((i) => i.speed), [1, 1, 3], 'the last instance is slower')

  const tags = JSON.parse(await (await request(`${corral}/api/tags`)).body.text()) as { models: Array<{ name: string }> }
  t.same(tags.models.map((m) => m.name).sort(), ['llama3.2:latest', 'nomic-embed-text:latest'])

  const embed = await request(`${corral}/api/embed`, { method: 'POST', body: JSON.stringify({ model: 'nomic-embed-text', input: ['a llama', 'a corral'] }) })
  const vectors = JSON.parse(await embed.body.text()) as { embeddings: number[][] }
  t.equal(embed.statusCode, 200)
  t.equal(vectors.embeddings.length, 2)
  t.equal(vectors.embeddings[0]?.length, 768)

  const chat = JSON.stringify({ model: 'llama3.2', messages: [{ role: 'user', content: 'Why is the sky blue?' }], options: { temperature: 0 } })
  const first = await request(`${corral}/api/chat`, { method: 'POST', body: chat })
  t.equal(first.headers['x-corral-cache'], 'miss')
  const lines = (await first.body.text()).trim().split('\n').map((l) => JSON.parse(l) as { done: boolean; message: { content: string } })
  t.equal(lines.length, 7, 'six token chunks and the done chunk: streamed as NDJSON')
  t.equal(lines.at(-1)?.done, true)
  const second = await request(`${corral}/api/chat`, { method: 'POST', body: chat })
  t.equal(second.headers['x-corral-cache'], 'hit', 'the repeat is a cache hit')
  const again = (await second.body.text()).trim().split('\n').map((l) => JSON.parse(l) as { message: { content: string } })
  t.equal(again.map((l) => l.message.content).join(''), lines.map((l) => l.message.content).join(''), 'the same answer')

  const stats = JSON.parse(await (await request(`${corral}/api/load-balancer-stats`)).body.text()) as { instances: Array<{ name: string; state: string }> }
  t.same(stats.instances.map((i) => i.name), ['ollama-1', 'ollama-2', 'ollama-3-slow'])
  t.ok(stats.instances.every((i) => i.state === 'healthy'), 'every instance is healthy')
  const metrics = await (await request(`${corral}/metrics`)).body.text()
  t.match(metrics, /^corral_/m)

  t.equal(await stop(child), 0, 'SIGTERM stops corral and the fleet cleanly')
  const refused = await request(`${info.instances[0]?.url ?? ''}/api/version`).then(() => 'answered', (err: NodeJS.ErrnoException) => err.code)
  t.equal(refused, 'ECONNREFUSED', 'the fleet is gone')
})

t.test('corral demo --fleet-only: the instances and the control channel, no corral', async (t) => {
  const { child, info } = await startDemo(t, ['--fleet-only', '--instances', 'a:1,b:2', '--slots', '3', ...FAST])
  t.equal(info.corral, undefined)
  t.equal(info.slots, 3)
  const a = info.instances[0]?.url ?? ''
  const generated = await request(`${a}/api/generate`, { method: 'POST', body: JSON.stringify({ model: 'llama3.2', prompt: 'hi', stream: false }) })
  t.equal(generated.headers['x-instance'], 'a', 'answers say which instance served them')
  await generated.body.text()
  const control = info.control ?? ''
  const stats = JSON.parse(await (await request(`${control}/stats`)).body.text()) as { instances: Array<{ name: string; received: number; completed: number }> }
  t.match(stats.instances[0], { name: 'a', received: 1, completed: 1 })
  t.same(JSON.parse(await (await request(`${control}/bench/stats`)).body.text()), { calls: 1, distinct: 1, inputs: 0 })
  const killed = await request(`${control}/kill?name=b`, { method: 'POST' })
  t.match(JSON.parse(await killed.body.text()), { name: 'b', alive: false })
  t.equal(await stop(child), 0)
})

t.test('corral demo: bad options exit 2 with one line each', async (t) => {
  const child = spawn(...nodeCommand([CORRAL_BIN, 'demo', '--instances', '0', '--slots', 'x']), { env: cleanEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const [code] = (await once(child, 'exit')) as [number | null]
  t.equal(code, 2)
  t.match(stderr, /--instances must be 1 to 64, got 0/)
  t.match(stderr, /--slots must be an integer from 1 to 1024, got "x"/)
})
