// What one cached 768-d vector costs in the memory store (bench/README.md, "Cache misses"): fills
// a MemoryStore through churn (every insert past the bound evicts) at two bounds, in one process
// each, and prints RSS per entry at each and the marginal cost per entry between them (what one
// more entry costs; the fixed costs of the process and of V8's heap drop out).
// Needs the build (npm run build). Usage: node --expose-gc bench/cache/entry-cost.js [inserts]
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const inserts = Number(process.argv[2] || 600000)
if (process.argv[3] === '--child') {
  const { MemoryStore } = await import('../../dist/cache/memory-store.js')
  const { KeySpace } = await import('../../dist/cache/cache-key.js')
  const { hash } = await import('node:crypto')
  const keys = new KeySpace('corral:')
  const store = new MemoryStore({ maxBytes: Number(process.argv[4]) * 1024 * 1024, maxEntryBytes: 8 << 20, layerOf: (k) => keys.layerOf(k) })
  globalThis.gc()
  const before = process.memoryUsage().rss
  for (let i = 0; i < inserts; i++) {
    // A stored 768-d float32 vector (3,080 bytes) under a key of the shape corral writes.
    store.put(keys.entry('chunk', 'nomic-embed-text:latest', hash('sha256', String(i), 'hex')), Buffer.alloc(3080, i & 255), 3_600_000)
  }
  globalThis.gc()
  console.log(JSON.stringify({ entries: store.usage('chunk').entries, rss: process.memoryUsage().rss - before }))
} else {
  const run = (mib) =>
    JSON.parse(execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), String(inserts), '--child', String(mib)], { encoding: 'utf8' }))
  const small = run(112)
  const large = run(224)
  for (const [mib, r] of [[112, small], [224, large]]) console.log(`bound ${mib} MiB: ${r.entries} entries, RSS +${(r.rss / 2 ** 20).toFixed(0)} MiB, ${(r.rss / r.entries).toFixed(0)} bytes per entry`)
  console.log(`marginal: ${((large.rss - small.rss) / (large.entries - small.entries)).toFixed(0)} bytes per entry (goal <= 4096)`)
}
