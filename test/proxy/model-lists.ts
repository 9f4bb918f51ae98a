/** Merging model lists: pure decision logic, so plain values and no network. */
import t from 'tap'
import { mergeModelLists, modelKey } from '../../src/proxy/model-lists.js'

t.test('modelKey: a missing tag is :latest, case does not matter, namespaces and registries kept', async (t) => {
  const cases: [string, string][] = [
    ['llama3.2', 'llama3.2:latest'],
    ['llama3.2:latest', 'llama3.2:latest'],
    ['Llama3.2:Latest', 'llama3.2:latest'],
    ['qwen3:0.6b', 'qwen3:0.6b'],
    ['me/model', 'me/model:latest'],
    ['localhost:5000/me/model', 'localhost:5000/me/model:latest'],
    ['localhost:5000/me/model:q4', 'localhost:5000/me/model:q4'],
  ]
  for (const [name, key] of cases) t.equal(modelKey(name), key, name)
})

const tag = (name: string, modified_at: string, digest = name) => ({ name, model: name, modified_at, digest })

t.test('tags: union, duplicates by name keep the newest entry, newest first', async (t) => {
  const cases: { name: string; lists: unknown[][]; expect: [string, string][] }[] = [
    {
      name: 'disjoint lists interleave by modified_at',
      lists: [
        [tag('a', '2024-03-01T00:00:00Z'), tag('c', '2024-01-01T00:00:00Z')],
        [tag('b', '2024-02-01T00:00:00Z')],
      ],
      expect: [['a', 'a'], ['b', 'b'], ['c', 'c']],
    },
    {
      name: 'the newer duplicate wins, wherever it is',
      lists: [[tag('m:latest', '2024-01-01T00:00:00Z', 'old')], [tag('m:latest', '2024-05-01T00:00:00Z', 'new')]],
      expect: [['m:latest', 'new']],
    },
    {
      name: 'name and name:latest are one model',
      lists: [[tag('m', '2024-05-01T00:00:00Z', 'new')], [tag('m:latest', '2024-01-01T00:00:00Z', 'old')]],
      expect: [['m', 'new']],
    },
    {
      name: 'equal times: the first instance wins and keeps its place',
      lists: [
        [tag('x', '2024-01-01T00:00:00Z', 'first'), tag('y', '2024-01-01T00:00:00Z')],
        [tag('x:latest', '2024-01-01T00:00:00Z', 'second')],
      ],
      expect: [['x', 'first'], ['y', 'y']],
    },
    {
      name: "Ollama's nanosecond timestamps with offsets compare as instants",
      // 17:00:00.123Z and 17:00:00.5Z: b is the newer one by 377 ms.
      lists: [[tag('a', '2024-05-01T10:00:00.123456789-07:00')], [tag('b', '2024-05-01T18:00:00.5+01:00')]],
      expect: [['b', 'b'], ['a', 'a']],
    },
    {
      name: 'entries without a name or not objects are dropped; a bad time sorts last',
      lists: [[null, 'x', [], { model: 'nameless' }, tag('bad', 'yesterday'), tag('ok', '2024-01-01T00:00:00Z')]],
      expect: [['ok', 'ok'], ['bad', 'bad']],
    },
    { name: 'no models anywhere', lists: [[], []], expect: [] },
  ]
  for (const c of cases) {
    const merged = mergeModelLists('tags', c.lists)
    t.same(merged.map((m) => [m.name, m.digest]), c.expect, c.name)
  }
})

t.test('ps: duplicates keep the latest expires_at, longest remaining first', async (t) => {
  const ps = (name: string, expires_at: string, size: number) => ({ name, model: name, expires_at, size })
  const merged = mergeModelLists('ps', [
    [ps('a:latest', '2030-01-01T00:05:00Z', 1), ps('b:latest', '2030-01-01T00:10:00Z', 2)],
    [ps('a', '2030-01-01T01:00:00Z', 3)],
  ])
  t.same(merged, [ps('a', '2030-01-01T01:00:00Z', 3), ps('b:latest', '2030-01-01T00:10:00Z', 2)])
})

t.test('openai models: by id, the newest created wins, newest first', async (t) => {
  const model = (id: string, created: number) => ({ id, object: 'model', created, owned_by: 'library' })
  const merged = mergeModelLists('openai_models', [
    [model('a:latest', 100), model('b:latest', 300)],
    [model('a', 200), model('c:7b', 50)],
  ])
  t.same(merged, [model('b:latest', 300), model('a', 200), model('c:7b', 50)])
})
