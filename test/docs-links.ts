import t from 'tap'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, normalize } from 'node:path'

// Every relative link in README.md, docs/*.md and dashboards/README.md must point at a file that
// exists and, with a #fragment, at a heading in it (GitHub's anchors: lower case, punctuation
// dropped, spaces as hyphens).
const files = ['README.md', 'dashboards/README.md', ...readdirSync('docs').filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]

function anchors(file: string): Set<string> {
  const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '')
  const seen = new Map<string, number>()
  const result = new Set<string>()
  for (const match of text.matchAll(/^#{1,6} (.+)$/gm)) {
    const base = match[1]!
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N} _-]/gu, '')
      .replace(/ /g, '-')
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    result.add(n === 0 ? base : `${base}-${n}`)
  }
  return result
}

t.test('README.md stays an entry point of at most 250 lines', async (t) => {
  const lines = readFileSync('README.md', 'utf8').split('\n').length
  t.ok(lines <= 250, `README.md has ${lines} lines`)
})

for (const file of files) {
  t.test(`relative links in ${file} resolve`, async (t) => {
    const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '')
    let links = 0
    for (const match of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = match[1]!
      if (/^[a-z]+:/i.test(target)) continue
      links++
      const [path, fragment] = target.split('#') as [string, string | undefined]
      const resolved = path === '' ? file : normalize(join(dirname(file), path))
      t.ok(existsSync(resolved), `${target} -> ${resolved} exists`)
      if (fragment !== undefined && existsSync(resolved) && statSync(resolved).isFile()) {
        t.ok(anchors(resolved).has(fragment), `${target}: #${fragment} is a heading of ${resolved}`)
      }
    }
    t.pass(`${links} relative links`)
  })
}
