/** Cache keys: pure functions, no network. */
import t from 'tap'
import { canonicalJson, itemKey, KeySpace, requestBasis, requestKey } from '../../src/cache/cache-key.js'
import { canonicalModel } from '../../src/shared/model-name.js'

const key = (body: Record<string, unknown>, digest?: string): string =>
  requestKey(requestBasis('generate', canonicalModel(String(body.model)), digest, body))

t.test('canonical JSON sorts keys at every depth and drops undefined', async (t) => {
  t.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: null }, u: undefined }), '{"a":{"c":null,"d":[1,{"y":2,"z":1}]},"b":1}')
  t.equal(canonicalJson('x'), '"x"')
})

t.test('model names resolve to a tag as Ollama does', async (t) => {
  t.equal(canonicalModel('llama3.2'), 'llama3.2:latest')
  t.equal(canonicalModel('llama3.2:1b'), 'llama3.2:1b')
  t.equal(canonicalModel('hf.co/org/model'), 'hf.co/org/model:latest')
  t.equal(canonicalModel('registry:5000/ns/model'), 'registry:5000/ns/model:latest')
})

t.test('every field that changes the output changes the key; stream and keep_alive do not', async (t) => {
  const base = { model: 'llama3.2', prompt: 'p', options: { seed: 1, temperature: 0.7 } }
  const k = key(base)
  t.equal(key({ options: { temperature: 0.7, seed: 1 }, prompt: 'p', model: 'llama3.2:latest' }), k, 'field order, tag')
  t.equal(key({ ...base, stream: false }), k, 'stream')
  t.equal(key({ ...base, keep_alive: '10m' }), k, 'keep_alive')
  const changes: Record<string, unknown>[] = [
    { prompt: 'q' },
    { system: 's' },
    { template: '{{ .Prompt }}' },
    { suffix: 'x' },
    { format: 'json' },
    { format: { type: 'object' } },
    { raw: true },
    { images: ['aGk='] },
    { tools: [{ type: 'function', function: { name: 'f' } }] },
    { think: true },
    { think: 'high' },
    { context: [1, 2, 3] },
    { truncate: false },
    { dimensions: 64 },
    { options: { seed: 2, temperature: 0.7 } },
    { options: { seed: 1, temperature: 0.7, num_ctx: 8192 } },
    { options: { seed: 1, temperature: 0.7, top_k: 5 } },
    { options: { seed: 1, temperature: 0.7, stop: ['\n'] } },
    { model: 'llama3.2:1b' },
  ]
  const seen = new Set([k])
  for (const change of changes) {
    const changed = key({ ...base, ...change })
    t.not(changed, k, JSON.stringify(change))
    seen.add(changed)
  }
  t.equal(seen.size, changes.length + 1, 'all different from each other too')
  t.not(key(base, 'sha256:1'), key(base, 'sha256:2'), 'the model digest')
})

t.test('families are namespaces; items are keyed one by one', async (t) => {
  const body = { model: 'm', prompt: 'same' }
  t.not(requestKey(requestBasis('embed', 'm:latest', undefined, body, 'prompt')), requestKey(requestBasis('embeddings', 'm:latest', undefined, body, 'prompt')))
  const basis = requestBasis('embed', 'm:latest', undefined, { model: 'm', input: ['a', 'b'] }, 'input')
  t.equal(basis, requestBasis('embed', 'm:latest', undefined, { model: 'm', input: 'c' }, 'input'), 'the input is not part of the basis')
  const basisKey = requestKey(basis)
  t.not(itemKey(basisKey, 'a'), itemKey(basisKey, 'b'))
  t.match(itemKey(basisKey, 'a'), /^[0-9a-f]{64}$/)
  const other = requestKey(requestBasis('embed', 'm:latest', undefined, { model: 'm', input: ['a'], truncate: false }, 'input'))
  t.not(itemKey(other, 'a'), itemKey(basisKey, 'a'), 'the same item under another basis is another key')
})

t.test('key space: flush prefixes by layer and model', async (t) => {
  const keys = new KeySpace('corral:')
  t.equal(keys.entry('chunk', 'm:latest', 'abc'), 'corral:chunk:m:latest:abc')
  t.equal(keys.layerOf('corral:chunk:m:latest:abc'), 'chunk')
  t.equal(keys.layerOf(keys.chunkMeta('doc-1')), 'chunk')
  t.same(keys.prefixes(undefined, undefined), ['corral:'])
  t.same(keys.prefixes('chunk', undefined), ['corral:chunk:', 'corral:chunk-meta:'])
  t.same(keys.prefixes('inference', 'm:latest'), ['corral:inference:m:latest:'])
  t.same(keys.prefixes(undefined, 'm:latest'), ['corral:embedding:m:latest:', 'corral:chunk:m:latest:', 'corral:inference:m:latest:'])
})
