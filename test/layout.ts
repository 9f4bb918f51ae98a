/**
 * The layout of src/ (docs/architecture.md): imports go one way, from the top of LAYERS down.
 * Every import counts, `import type` and `import()` included: a type import that goes back up
 * still ties the folders into one knot a reader has to hold at once.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import t from 'tap'
import ts from 'typescript'

/**
 * Folders of src/ (and its top-level files, by name), top first. A file may import from its own
 * folder and from any folder below it; never from one above.
 */
const LAYERS = [
  'cli', // the command line
  'demo', // `corral demo`: a simulated Ollama fleet (also the tests' and benches' fake)
  'bench', // `corral bench`
  'index', // createCorral: wires the real parts
  'reloader', // hot reload of a running corral
  'server', // the node:http listener and corral's own routes
  'auth', // keys, tokens, per-key limits
  'proxy', // forwarding to an instance, cluster-wide views
  'observability', // metrics, stats, logs
  'cache', // lookup, single flight, capture and replay, stores
  'http', // the exchange (one request as it moves through), routes, body reading, replies
  'balancer', // instances, health, discovery, selection, admission
  'redis', // the Redis client the cache and the limits share
  'config', // schema, defaults, loading
  'limits', // client-facing request limits (sizes, rates, slow clients)
  'shared', // errors and the Ollama model name: what every folder may use
] as const

const SRC = resolve('src')

/** Longest a source file may grow: past it, a file holds two concepts and splits along its seam. */
const MAX_LINES = 400

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name)
    if (e.isDirectory()) return sourceFiles(path)
    return e.name.endsWith('.ts') ? [path] : []
  })
}

/** The layer of a file under src/: its folder, or its own name for a file directly in src/. */
function layerOf(file: string): string {
  const parts = relative(SRC, file).split(sep)
  return parts.length > 1 ? (parts[0] ?? '') : (parts[0] ?? '').replace(/\.ts$/, '')
}

/** Relative module specifiers of a file: static imports and exports, type-only ones, `import()`. */
function importsOf(file: string): string[] {
  const info = ts.preProcessFile(readFileSync(file, 'utf8'), true, true)
  return info.importedFiles.map((f) => f.fileName).filter((name) => name.startsWith('.'))
}

const files = sourceFiles(SRC)

t.test('every folder of src/ has its place in LAYERS', async (t) => {
  const unplaced = [...new Set(files.map(layerOf))].filter((l) => !(LAYERS as readonly string[]).includes(l))
  t.strictSame(unplaced, [], 'add a new folder (or top-level file) of src/ to LAYERS in test/layout.ts')
})

t.test('imports go down the layers, never back up', async (t) => {
  const upward: string[] = []
  for (const file of files) {
    const from = layerOf(file)
    for (const spec of importsOf(file)) {
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts')
      const to = layerOf(target)
      if (to === from) continue
      const rank = (l: string): number => (LAYERS as readonly string[]).indexOf(l)
      if (rank(to) < rank(from)) {
        upward.push(`src/${relative(SRC, file)} imports '${spec}': ${from} may not import ${to} (${to} is above it)`)
      }
    }
  }
  t.strictSame(upward, [], 'imports that go back up:\n' + upward.join('\n'))
  t.ok(files.length > 50, `read ${files.length} source files`)
})

t.test(`no source file is longer than ${MAX_LINES} lines`, async (t) => {
  const long = files
    .map((file) => ({ name: relative(SRC, file).split(sep).join('/'), lines: readFileSync(file, 'utf8').split('\n').length - 1 }))
    .filter((f) => f.lines > MAX_LINES)
    .map((f) => `src/${f.name}: ${f.lines} lines`)
  t.strictSame(long, [], `split these along their seams (at most ${MAX_LINES} lines each):\n${long.join('\n')}`)
})
