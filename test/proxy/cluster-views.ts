/**
 * "One big Ollama": the model lists are the union over the instances, and model management
 * reaches every instance with one answer in Ollama's shape; against real fake-ollama servers.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { Ollama } from 'ollama'
import { request } from 'undici'
import { Balancer } from '../../src/balancer/balancer.js'
import type { Instance } from '../../src/balancer/instance.js'
import { passThroughCache } from '../../src/cache/request-cache.js'
import { configFromObject } from '../../src/config/load-config.js'
import { createLogger } from '../../src/observability/logger.js'
import { ClusterViews } from '../../src/proxy/cluster-views.js'
import { RequestWindow } from '../../src/observability/request-window.js'
import { Proxy } from '../../src/proxy/proxy.js'
import { pathnameOf } from '../../src/http/routes.js'
import { startFakeOllama, type FakeModel, type FakeOllama, type FakeOllamaOptions } from '../fixtures/fake-ollama.js'
import { ndjson, send } from '../fixtures/http.js'
import { logCapture, startCorral, type LogLine } from '../fixtures/start-corral.js'
import { waitFor } from '../fixtures/wait-for.js'

type Json = Record<string, unknown>
interface TagEntry { name: string; digest: string; modified_at: string }
interface PsEntry { name: string; expires_at: string }

async function fleet(t: Test, n: number, opts: (i: number) => FakeOllamaOptions = () => ({})): Promise<FakeOllama[]> {
  const fakes = await Promise.all(Array.from({ length: n }, (_, i) => startFakeOllama({ name: `fake${i}`, ...opts(i) })))
  t.teardown(() => Promise.all(fakes.map((f) => f.close())))
  return fakes
}

async function tagsOf(fake: FakeOllama): Promise<string[]> {
  return ((await send(fake.url, 'GET', '/api/tags')).json as { models: TagEntry[] }).models.map((m) => m.name)
}

/**
 * corral's proxy with ClusterViews built by hand, to give it a `modelsChanged` hook and a
 * candidate list the test controls (createCorral wires neither).
 */
async function startViews(
  t: Test,
  fakes: readonly FakeOllama[],
  deps: { modelsChanged?: (instances: readonly Instance[]) => void; candidates?: (all: readonly Instance[]) => readonly Instance[] } = {},
): Promise<{ url: string; logs: LogLine[] }> {
  const { config } = configFromObject({ instances: fakes.map((f, i) => ({ url: f.url, name: `i${i}` })) })
  const { stream, lines } = logCapture()
  const logger = createLogger('info', stream)
  const balancer = new Balancer(config, { logger })
  const pick = deps.candidates ?? ((all) => all)
  const views = new ClusterViews({ candidates: () => pick(balancer.instances), logger, config: config.proxy, modelsChanged: deps.modelsChanged })
  const proxy = new Proxy({ balancer, cache: passThroughCache, logger, config: config.proxy, limits: config.limits, views, window: new RequestWindow() })
  const server = createServer((req, res) => void proxy.handle(req, res, pathnameOf(req.url ?? '/')))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
    await balancer.destroy()
  })
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, logs: lines }
}

// ---- merged lists ---------------------------------------------------------------------------

t.test('/api/tags: the union, one entry per model (the newest), newest first, in Ollama shape', async (t) => {
  const d = (c: string) => c.repeat(64)
  const cases: { name: string; models: FakeModel[][]; expect: [string, string][] }[] = [
    {
      name: 'disjoint models interleave by modified_at',
      models: [
        [{ name: 'a1', modifiedAt: '2024-03-01T00:00:00Z', digest: d('1') }, { name: 'a2', modifiedAt: '2024-01-01T00:00:00Z', digest: d('2') }],
        [{ name: 'b1:7b', modifiedAt: '2024-02-01T00:00:00Z', digest: d('3') }],
      ],
      expect: [['a1:latest', d('1')], ['b1:7b', d('3')], ['a2:latest', d('2')]],
    },
    {
      name: 'a model on both: the newer entry (and its digest) wins',
      models: [
        [{ name: 'llama3.2', modifiedAt: '2024-01-01T00:00:00Z', digest: d('a') }],
        [{ name: 'llama3.2:latest', modifiedAt: '2024-06-01T00:00:00Z', digest: d('b') }],
      ],
      expect: [['llama3.2:latest', d('b')]],
    },
    {
      name: 'three instances, overlapping',
      models: [
        [{ name: 'x', modifiedAt: '2024-05-01T00:00:00Z', digest: d('4') }, { name: 'y', modifiedAt: '2024-01-01T00:00:00Z', digest: d('5') }],
        [{ name: 'y', modifiedAt: '2024-04-01T00:00:00Z', digest: d('6') }],
        [{ name: 'X:latest', modifiedAt: '2024-02-01T00:00:00Z', digest: d('7') }, { name: 'z', modifiedAt: '2024-03-01T00:00:00Z', digest: d('8') }],
      ],
      expect: [['x:latest', d('4')], ['y:latest', d('6')], ['z:latest', d('8')]],
    },
  ]
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const fakes = await fleet(t, c.models.length, (i) => ({ models: c.models[i]!, loaded: [] }))
      const { url } = await startCorral(t, fakes.map((f) => f.url))
      const res = await send(url, 'GET', '/api/tags')
      t.equal(res.status, 200)
      t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
      const { models } = res.json as { models: TagEntry[] }
      t.same(models.map((m) => [m.name, m.digest]), c.expect)
      for (const f of fakes) t.equal(f.count('/api/tags'), 1, `${f.name} asked once`)
      // Entries pass through whole: the same fields as the instance's own entry.
      const direct = (await send(fakes[0]!.url, 'GET', '/api/tags')).json as { models: Json[] }
      t.same(Object.keys(models[0]!), Object.keys(direct.models[0]!), 'Ollama entry shape')
    })
  }
})

t.test('HEAD /api/tags: the merged answer length, no body', async (t) => {
  const fakes = await fleet(t, 2, (i) => ({ models: [{ name: `m${i}` }] }))
  const { url } = await startCorral(t, fakes.map((f) => f.url))
  const get = await send(url, 'GET', '/api/tags')
  const head = await send(url, 'HEAD', '/api/tags')
  t.equal(head.status, 200)
  t.equal(head.text, '')
  t.equal(head.headers['content-length'], String(Buffer.byteLength(get.text)))
})

t.test('/api/ps: the union of loaded models, the latest expiry wins, longest remaining first', async (t) => {
  const [a, b] = await fleet(t, 2)
  // Both load llama3.2 (5 min by default); b keeps it an hour. a also loads the embedding model.
  t.equal((await send(b!.url, 'POST', '/api/generate', { model: 'llama3.2', prompt: '', keep_alive: '1h' })).status, 200)
  t.equal((await send(a!.url, 'POST', '/api/embed', { model: 'nomic-embed-text', input: [], keep_alive: '10m' })).status, 200)
  const expiryAtB = ((await send(b!.url, 'GET', '/api/ps')).json as { models: PsEntry[] }).models[0]!.expires_at
  const { url } = await startCorral(t, [a!.url, b!.url])
  const res = await send(url, 'GET', '/api/ps')
  t.equal(res.status, 200)
  const { models } = res.json as { models: PsEntry[] }
  t.same(models.map((m) => m.name), ['llama3.2:latest', 'nomic-embed-text:latest'])
  t.equal(models[0]!.expires_at, expiryAtB, "b's entry, which expires last")
  t.match(models[0], { name: 'llama3.2:latest', model: 'llama3.2:latest', size: Number, digest: String, details: Object, size_vram: Number })
})

t.test('/v1/models: the union in OpenAI list shape; /v1/models/{name} still goes to one instance', async (t) => {
  const [a, b] = await fleet(t, 2, (i) => ({ models: i === 0 ? [{ name: 'llama3.2' }, { name: 'only-a' }] : [{ name: 'llama3.2' }, { name: 'only-b:1b' }] }))
  const { url } = await startCorral(t, [a!.url, b!.url])
  const res = await send(url, 'GET', '/v1/models')
  t.equal(res.status, 200)
  const list = res.json as { object: string; data: { id: string; object: string; owned_by: string }[] }
  t.equal(list.object, 'list')
  t.same(list.data.map((m) => m.id).sort(), ['llama3.2:latest', 'only-a:latest', 'only-b:1b'])
  t.ok(list.data.every((m) => m.object === 'model' && m.owned_by === 'library'))
  const one = await send(url, 'GET', '/v1/models/llama3.2')
  t.equal(one.status, 200)
  t.equal((one.json as Json).id, 'llama3.2')
  t.equal(a!.count('/v1/models/llama3.2') + b!.count('/v1/models/llama3.2'), 1, 'a single model is asked of one instance')
})

t.test('an instance down or failing: the union of the others, and a warning naming it', async (t) => {
  const cases: { name: string; fault: (f: FakeOllama) => Promise<void> | void; path: string }[] = [
    { name: 'refused', fault: (f) => f.stop(), path: '/api/tags' },
    { name: 'reset', fault: (f) => f.script({ kind: 'refuse' }, { times: 2 }), path: '/api/ps' },
    { name: '500', fault: (f) => f.script({ kind: 'status', status: 500 }), path: '/v1/models' },
    { name: 'cut mid-body', fault: (f) => f.script({ kind: 'die-after-chunks', chunks: 1 }), path: '/api/tags' },
  ]
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const fakes = await fleet(t, 3, (i) => ({ models: [{ name: `m${i}` }], loaded: [`m${i}`] }))
      const { url, logs } = await startCorral(t, fakes.map((f) => f.url))
      await c.fault(fakes[1]!)
      const res = await send(url, 'GET', c.path)
      t.equal(res.status, 200)
      const body = res.json as { models?: TagEntry[]; data?: { id: string }[] }
      const names = (body.models?.map((m) => m.name) ?? body.data?.map((m) => m.id) ?? []).sort()
      t.same(names, ['m0:latest', 'm2:latest'], 'the others are listed')
      t.ok(logs.some((l) => l.msg === 'instance left out of the merged list' && l.instance === 'i1' && l.level === 'warn'), 'warned')
    })
  }
})

t.test('every instance down: 502 in the route dialect, naming each instance', async (t) => {
  const fakes = await fleet(t, 2)
  const { url } = await startCorral(t, fakes.map((f) => f.url))
  await Promise.all(fakes.map((f) => f.stop()))
  const tags = await send(url, 'GET', '/api/tags')
  t.equal(tags.status, 502)
  t.equal(tags.headers['content-type'], 'application/json; charset=utf-8')
  t.match(tags.json, { error: /i0: connection refused; i1: connection refused/ })
  const models = await send(url, 'GET', '/v1/models')
  t.equal(models.status, 502)
  t.match(models.json, { error: { message: /i0: connection refused; i1: connection refused/, type: 'api_error' } })
})

t.test('a wrong method refused by every instance is answered as Ollama does (405)', async (t) => {
  const fakes = await fleet(t, 2)
  const { url } = await startCorral(t, fakes.map((f) => f.url))
  const res = await send(url, 'POST', '/api/ps', {})
  t.equal(res.status, 405)
  t.same(res.json, { error: '405 method not allowed' })
})

// ---- pull -----------------------------------------------------------------------------------

/** Per layer digest: its size, from a pull of `model` on a fresh fake (the same model has the same layers everywhere). */
async function layerSizes(t: Test, model: string): Promise<Map<string, number>> {
  const [reference] = await fleet(t, 1)
  const lines = ndjson((await send(reference!.url, 'POST', '/api/pull', { model })).text)
  return new Map(lines.filter((l) => typeof l.digest === 'string').map((l) => [l.digest as string, l.total as number]))
}

t.test('pull reaches every instance and streams one progress sequence with summed totals', async (t) => {
  const sizes = await layerSizes(t, 'qwen3:0.6b')
  const fakes = await fleet(t, 3)
  const { url } = await startCorral(t, fakes.map((f) => f.url))
  const res = await send(url, 'POST', '/api/pull', { model: 'qwen3:0.6b' })
  t.equal(res.status, 200)
  t.equal(res.headers['content-type'], 'application/x-ndjson')
  const lines = ndjson(res.text)
  t.same(lines.at(-1), { status: 'success' }, 'success at the end')
  t.equal(lines.filter((l) => l.status === 'success').length, 1, 'once')
  for (const status of ['pulling manifest', 'verifying sha256 digest', 'writing manifest']) {
    t.equal(lines.filter((l) => l.status === status).length, 1, `"${status}" once`)
  }
  t.equal(sizes.size, 4, 'four layers')
  for (const [digest, size] of sizes) {
    const last = lines.filter((l) => l.digest === digest).at(-1)
    t.match(last, { digest, total: 3 * size, completed: 3 * size }, `layer ${digest.slice(7, 19)}: the sum over three instances`)
  }
  t.ok(lines.every((l) => l.error === undefined), 'no error line')
  for (const f of fakes) {
    t.equal(f.count('/api/pull'), 1, `${f.name} got exactly one pull`)
    t.ok((await tagsOf(f)).includes('qwen3:0.6b'), `${f.name} has the model`)
  }
})

t.test('pull failing on one instance: the others still pull, the last line names the failure', async (t) => {
  const fakes = await fleet(t, 3)
  const { url, logs } = await startCorral(t, fakes.map((f) => f.url))
  fakes[1]!.script({ kind: 'fail-progress', lines: 3, error: 'max retries exceeded: EOF' }, { path: '/api/pull' })
  const res = await send(url, 'POST', '/api/pull', { model: 'qwen3:0.6b' })
  t.equal(res.status, 200, 'a mid-stream error keeps 200, as in Ollama')
  const lines = ndjson(res.text)
  t.same(lines.at(-1), { error: 'pull failed on i1: max retries exceeded: EOF (succeeded on i0, i2)' })
  t.notOk(lines.some((l) => l.status === 'success'), 'no success line')
  t.ok((await tagsOf(fakes[0]!)).includes('qwen3:0.6b'), 'i0 pulled')
  t.ok((await tagsOf(fakes[2]!)).includes('qwen3:0.6b'), 'i2 pulled')
  t.notOk((await tagsOf(fakes[1]!)).includes('qwen3:0.6b'), 'i1 did not')
  t.ok(logs.some((l) => l.msg === 'model operation failed on an instance' && l.instance === 'i1'), 'logged')
  // Through the official client, the error line is an error.
  const ollama = new Ollama({ host: url })
  fakes[0]!.script({ kind: 'fail-progress', lines: 0 }, { path: '/api/pull' })
  const err = await (async () => {
    for await (const part of await ollama.pull({ model: 'qwen3:0.6b', stream: true })) void part
  })().catch((e: unknown) => e)
  t.match(err, { message: /pull failed on i0: pull model manifest: file does not exist/ }, 'ollama-js throws it')
})

t.test('pull failing alike on every instance: the last line is Ollama\'s own error', async (t) => {
  const fakes = await fleet(t, 2)
  const { url } = await startCorral(t, fakes.map((f) => f.url))
  for (const f of fakes) f.script({ kind: 'fail-progress', lines: 1 }, { path: '/api/pull' })
  const lines = ndjson((await send(url, 'POST', '/api/pull', { model: 'nope' })).text)
  t.same(lines, [{ status: 'pulling manifest' }, { error: 'pull model manifest: file does not exist' }])
})

t.test('pull with an instance down: streamed, and the error line names it', async (t) => {
  const fakes = await fleet(t, 2)
  const { url } = await startCorral(t, fakes.map((f) => f.url))
  await fakes[0]!.stop()
  const lines = ndjson((await send(url, 'POST', '/api/pull', { model: 'qwen3:0.6b' })).text)
  t.ok(lines.some((l) => l.status === 'pulling manifest'), 'progress of the live instance')
  t.same(lines.at(-1), { error: 'pull failed on i0: connection refused (succeeded on i1)' })
})

t.test('pull with stream:false: one JSON answer', async (t) => {
  const cases: { name: string; fault?: (fakes: FakeOllama[]) => void; status: number; body: unknown }[] = [
    { name: 'all succeed', status: 200, body: { status: 'success' } },
    {
      name: 'one fails: its status, named',
      fault: (f) => f[1]!.script({ kind: 'fail-progress', lines: 0 }, { path: '/api/pull' }),
      status: 500,
      body: { error: 'pull failed on i1: pull model manifest: file does not exist (succeeded on i0)' },
    },
    {
      name: 'one cut mid-stream: 500, named',
      fault: (f) => f[1]!.script({ kind: 'die-after-chunks', chunks: 3 }, { path: '/api/pull' }),
      status: 500,
      body: { error: 'pull failed on i1: connection closed by the instance (succeeded on i0)' },
    },
    {
      name: "all fail alike: Ollama's own answer",
      fault: (f) => f.forEach((x) => x.script({ kind: 'status', status: 404, error: 'model "nope" not found' }, { path: '/api/pull' })),
      status: 404,
      body: { error: 'model "nope" not found' },
    },
  ]
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const fakes = await fleet(t, 2)
      const { url } = await startCorral(t, fakes.map((f) => f.url))
      c.fault?.(fakes)
      const res = await send(url, 'POST', '/api/pull', { model: 'qwen3:0.6b', stream: false })
      t.equal(res.status, c.status)
      t.equal(res.headers['content-type'], 'application/json; charset=utf-8')
      t.same(res.json, c.body)
      for (const f of fakes) {
        t.equal(f.count('/api/pull'), 1, `${f.name} asked once`)
        t.same(f.requests.at(-1)!.body, { model: 'qwen3:0.6b', stream: true }, 'asked for a stream: no first-byte timeout on a long pull')
      }
    })
  }
})

t.test('a client that leaves during a pull aborts the request to every instance', async (t) => {
  const fakes = await fleet(t, 2)
  const { url } = await startCorral(t, fakes.map((f) => f.url))
  for (const f of fakes) f.script({ kind: 'slow', tokenDelayMs: 200 }, { path: '/api/pull' })
  const controller = new AbortController()
  const res = await request(`${url}/api/pull`, { method: 'POST', body: JSON.stringify({ model: 'qwen3:0.6b' }), signal: controller.signal })
  t.equal(res.statusCode, 200)
  controller.abort()
  await res.body.text().catch(() => undefined)
  await Promise.all(fakes.map((f) => f.waitForClosedEarly(1)))
  t.pass('both upstream pulls were closed early')
})

t.test('a client that leaves while the lists are gathered aborts the request to every instance', async (t) => {
  for (const path of ['/api/tags', '/api/ps']) {
    await t.test(path, async (t) => {
      const fakes = await fleet(t, 2)
      const { url, logs, corral } = await startCorral(t, fakes.map((f) => f.url))
      for (const f of fakes) f.script({ kind: 'hang' }, { path })
      const controller = new AbortController()
      const pending = request(url + path, { signal: controller.signal })
      await Promise.all(fakes.map((f) => f.waitForRequests(1, path)))
      controller.abort()
      await t.rejects(pending)
      await Promise.all(fakes.map((f) => f.waitForClosedEarly(1)))
      t.same(fakes.map((f) => f.closedEarly), [1, 1], 'both instance requests were closed early')
      t.same(corral.balancer.instances.map((i) => i.failures), [0, 0], 'not counted as instance failures')
      t.notOk(logs.some((l) => l.level === 'warn'), 'nor logged as such')
    })
  }
})

// ---- delete, copy, create -------------------------------------------------------------------

t.test('delete reaches every instance: 200 empty when all succeed', async (t) => {
  const fakes = await fleet(t, 3)
  const { url } = await startCorral(t, fakes.map((f) => f.url))
  const res = await send(url, 'DELETE', '/api/delete', { model: 'llama3.2' })
  t.equal(res.status, 200)
  t.equal(res.text, '')
  t.equal(res.headers['content-length'], '0')
  for (const f of fakes) {
    t.equal(f.count('/api/delete'), 1)
    t.notOk((await tagsOf(f)).includes('llama3.2:latest'), `gone from ${f.name}`)
  }
})

t.test('delete failures: named, with a fitting status', async (t) => {
  const cases: { name: string; setup: (f: FakeOllama[]) => Promise<void> | void; status: number; error: string; goneFrom: number[] }[] = [
    {
      name: 'missing on one: 500 naming it and the others',
      setup: (f) => f[1]!.removeModel('llama3.2'),
      status: 500,
      error: "delete failed on i1: model 'llama3.2' not found (succeeded on i0, i2)",
      goneFrom: [0, 2],
    },
    {
      name: "missing everywhere: Ollama's 404",
      setup: (f) => f.forEach((x) => x.removeModel('llama3.2')),
      status: 404,
      error: "model 'llama3.2' not found",
      goneFrom: [],
    },
    {
      name: 'one unreachable: named',
      setup: (f) => f[2]!.stop(),
      status: 500,
      error: 'delete failed on i2: connection refused (succeeded on i0, i1)',
      goneFrom: [0, 1],
    },
    {
      name: 'two fail differently: each with its reason',
      setup: async (f) => {
        f[0]!.removeModel('llama3.2')
        await f[1]!.stop()
      },
      status: 500,
      error: "delete failed on i0, i1: i0: model 'llama3.2' not found; i1: connection refused (succeeded on i2)",
      goneFrom: [2],
    },
    {
      name: 'all unreachable: 502',
      setup: (f) => Promise.all(f.map((x) => x.stop())).then(() => undefined),
      status: 502,
      error: 'delete failed on i0, i1, i2: connection refused',
      goneFrom: [],
    },
  ]
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const fakes = await fleet(t, 3)
      const { url } = await startCorral(t, fakes.map((f) => f.url))
      await c.setup(fakes)
      const res = await send(url, 'DELETE', '/api/delete', { model: 'llama3.2' })
      t.equal(res.status, c.status)
      t.same(res.json, { error: c.error })
      for (const i of c.goneFrom) t.notOk((await tagsOf(fakes[i]!)).includes('llama3.2:latest'), `deleted on i${i}`)
    })
  }
})

t.test('copy reaches every instance', async (t) => {
  const fakes = await fleet(t, 2)
  const { url } = await startCorral(t, fakes.map((f) => f.url))
  const res = await send(url, 'POST', '/api/copy', { source: 'llama3.2', destination: 'my-llama' })
  t.equal(res.status, 200)
  t.equal(res.text, '')
  for (const f of fakes) t.ok((await tagsOf(f)).includes('my-llama:latest'), `copied on ${f.name}`)
  fakes[0]!.removeModel('llama3.2')
  const partial = await send(url, 'POST', '/api/copy', { source: 'llama3.2', destination: 'again' })
  t.equal(partial.status, 500)
  t.same(partial.json, { error: 'copy failed on i0: model "llama3.2" not found (succeeded on i1)' })
})

t.test('create reaches every instance: one status sequence, success at the end; or one JSON', async (t) => {
  const fakes = await fleet(t, 3)
  const { url } = await startCorral(t, fakes.map((f) => f.url))
  const res = await send(url, 'POST', '/api/create', { model: 'mine', from: 'llama3.2', system: 'be brief' })
  t.equal(res.status, 200)
  const lines = ndjson(res.text)
  const direct = ndjson((await send(fakes[0]!.url, 'POST', '/api/create', { model: 'mine2', from: 'llama3.2', system: 'be brief' })).text)
  t.same(lines, direct, 'the same sequence one instance gives: every status once')
  for (const f of fakes) {
    t.equal(f.count('/api/create'), f === fakes[0] ? 2 : 1)
    t.ok((await tagsOf(f)).includes('mine:latest'), `created on ${f.name}`)
  }
  const single = await send(url, 'POST', '/api/create', { model: 'mine3', from: 'llama3.2', stream: false })
  t.equal(single.status, 200)
  t.same(single.json, { status: 'success' })
  const bad = await send(url, 'POST', '/api/create', { model: 'x' })
  t.equal(bad.status, 400, 'refused alike everywhere: as Ollama refuses it')
  t.same(bad.json, { error: "neither 'from' or 'files' was specified" })
})

// ---- hooks and candidates -------------------------------------------------------------------

t.test('modelsChanged is called with the instances reached, after success and failure', async (t) => {
  const fakes = await fleet(t, 3)
  const calls: string[][] = []
  const { url } = await startViews(t, fakes, { modelsChanged: (instances) => calls.push(instances.map((i) => i.name)) })
  t.equal((await send(url, 'POST', '/api/pull', { model: 'qwen3:0.6b' })).status, 200)
  t.same(calls, [['i0', 'i1', 'i2']], 'after pull')
  await fakes[1]!.stop()
  t.equal((await send(url, 'DELETE', '/api/delete', { model: 'qwen3:0.6b' })).status, 500)
  t.same(calls.at(-1), ['i0', 'i2'], 'after a partly failed delete: the instances that answered')
  await send(url, 'POST', '/api/copy', { source: 'llama3.2', destination: 'c' })
  await send(url, 'POST', '/api/create', { model: 'n', from: 'llama3.2', stream: false })
  t.equal(calls.length, 4, 'after copy and create too')
  await send(url, 'GET', '/api/tags')
  t.equal(calls.length, 4, 'not after reading a list')
})

t.test('a throwing modelsChanged hook does not break the answer', async (t) => {
  const fakes = await fleet(t, 1)
  const { url, logs } = await startViews(t, fakes, {
    modelsChanged: () => {
      throw new Error('discovery is down')
    },
  })
  const res = await send(url, 'POST', '/api/copy', { source: 'llama3.2', destination: 'c' })
  t.equal(res.status, 200)
  t.ok(logs.some((l) => l.msg === 'modelsChanged hook failed'))
})

t.test('only the candidate instances are covered', async (t) => {
  const fakes = await fleet(t, 3, (i) => ({ models: [{ name: `m${i}` }] }))
  const { url } = await startViews(t, fakes, { candidates: (all) => all.filter((i) => i.name !== 'i1') })
  const { models } = (await send(url, 'GET', '/api/tags')).json as { models: TagEntry[] }
  t.same(models.map((m) => m.name).sort(), ['m0:latest', 'm2:latest'])
  t.equal((await send(url, 'POST', '/api/pull', { model: 'qwen3:0.6b', stream: false })).status, 200)
  t.same(fakes.map((f) => f.count('/api/pull')), [1, 0, 1])
  t.same(fakes.map((f) => f.count('/api/tags')), [1, 0, 1])
})

t.test('X-Request-Id, Authorization and X-Forwarded-For reach every instance', async (t) => {
  const fakes = await fleet(t, 2)
  const { url } = await startCorral(t, fakes.map((f) => f.url))
  await send(url, 'DELETE', '/api/delete', { model: 'llama3.2' }, { 'x-request-id': 'fan-1', authorization: 'Bearer k' })
  for (const f of fakes) {
    const seen = f.requests.at(-1)!
    t.equal(seen.headers['x-request-id'], 'fan-1')
    t.equal(seen.headers.authorization, 'Bearer k')
    t.equal(seen.headers['x-forwarded-for'], '127.0.0.1')
    t.equal(seen.headers.host, new URL(f.url).host)
    t.same(seen.body, { model: 'llama3.2' })
  }
})

// ---- fan-out parts in the balancer's books -------------------------------------------------

interface InstanceStats { name: string; in_flight: number; requests: number; state: string; errors: number }

async function instanceStats(url: string): Promise<Map<string, InstanceStats>> {
  const stats = (await send(url, 'GET', '/api/load-balancer-stats')).json as { instances: InstanceStats[] }
  return new Map(stats.instances.map((i) => [i.name, i]))
}

t.test('each part of a fan-out is a request in flight at its instance while it runs, given back when it ends', async (t) => {
  const [a, b] = await fleet(t, 2)
  const { url } = await startCorral(t, [a!.url, b!.url])
  const before = await instanceStats(url)
  a!.script({ kind: 'hang' }, { path: '/api/pull' })
  const controller = new AbortController()
  const pull = request(`${url}/api/pull`, { method: 'POST', body: JSON.stringify({ model: 'qwen3:0.6b' }), signal: controller.signal }).then(
    (r) => r.body.text(),
    (err: unknown) => err,
  )
  // The answer is one merge of every part, so i1's part stays open while i0's hangs.
  const during = await waitFor('the pull in flight at both instances', async () => {
    const s = await instanceStats(url)
    return s.get('i0')!.in_flight === 1 && s.get('i1')!.in_flight === 1 && b!.count('/api/pull') === 1 ? s : undefined
  })
  t.equal(during.get('i0')!.requests, before.get('i0')!.requests + 1, 'counted as a request of i0')
  t.equal(during.get('i1')!.requests, before.get('i1')!.requests + 1, 'and of i1')
  controller.abort()
  await pull
  const after = await waitFor('the slot given back once the client left', async () => {
    const s = await instanceStats(url)
    return s.get('i0')!.in_flight === 0 && s.get('i1')!.in_flight === 0 ? s : undefined
  })
  for (const name of ['i0', 'i1']) {
    t.equal(after.get(name)!.state, 'healthy', `${name}: a client leaving says nothing of the instance`)
    t.equal(after.get(name)!.errors, 0)
  }
})

t.test('an instance that refuses the parts of fan-outs is ejected by passive health, and left out of the next', async (t) => {
  const [a, b] = await fleet(t, 2, (i) => ({ models: [{ name: `m${i}` }] }))
  const { url } = await startCorral(t, [a!.url, b!.url], { health: { eject_after: 2 } })
  await b!.stop()
  for (let i = 0; i < 2; i++) t.equal((await send(url, 'GET', '/api/tags')).status, 200, `tags ${i + 1}: the other's list`)
  const stats = await instanceStats(url)
  t.equal(stats.get('i1')!.state, 'ejected', 'two refused parts in a row eject i1')
  t.equal(stats.get('i1')!.errors, 2)
  t.equal(stats.get('i0')!.state, 'healthy')
  const tags = (await send(url, 'GET', '/api/tags')).json as { models: TagEntry[] }
  t.same(tags.models.map((m) => m.name), ['m0:latest'], 'the next list asks only the healthy one')
})
