import t from 'tap'
import { readFileSync } from 'node:fs'
import { configReferenceText } from '../../src/config/config-reference.js'
import { configJsonSchemaText } from '../../src/config/json-schema.js'

t.test('docs/configuration.md is in sync with the zod schema (npm run schema)', async (t) => {
  t.equal(readFileSync('docs/configuration.md', 'utf8'), configReferenceText())
})

t.test('every key of the JSON Schema has a row with a meaning in docs/configuration.md', async (t) => {
  interface Node {
    description?: string
    properties?: Record<string, Node>
    items?: Node
    anyOf?: Node[]
  }
  const keys: string[] = []
  const sections: string[] = []
  const walk = (path: string, node: Node): void => {
    const branches = [node, ...(node.anyOf ?? [])]
    for (const branch of branches) {
      if (branch.items !== undefined) walk(`${path}[]`, branch.items)
      for (const [key, child] of Object.entries(branch.properties ?? {})) {
        const childPath = path === '' ? key : `${path}.${key}`
        // A top-level object is a section of its own (checked below); every other key is a row.
        const section = path === '' && [child, ...(child.anyOf ?? [])].some((n) => n.properties !== undefined)
        if (section) sections.push(childPath)
        else keys.push(childPath)
        walk(childPath, child)
      }
    }
  }
  walk('', JSON.parse(configJsonSchemaText()) as Node)
  const text = configReferenceText()
  t.ok(keys.length > 80, `${keys.length} keys`)
  for (const section of sections) t.match(text, `\n## ${section}\n`, `${section} has a section`)
  for (const key of keys) {
    const line = text.split('\n').find((l) => l.startsWith(`| \`${key}\` |`))
    t.ok(line, `${key} has a row`)
    const meaning = line?.split(' | ').at(-1)?.replace(/ \|$/, '').trim()
    t.ok(meaning !== undefined && meaning.length > 0, `${key} has a meaning`)
  }
})
