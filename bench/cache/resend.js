// Re-send check of the ingestion benchmark (bench/cache/ingest.sh): BATCHES /api/embed batches of
// 32 new chunks sent at RATE batches/s, then the same batches again all at once; prints how many
// of the second pass were hits (X-Corral-Cache). With --million N it instead ingests N new vectors
// (32 a batch, --conns at a time, default 2: a pace at which corral stores what it is sent) and
// prints corral's RSS (from --pid) every tenth of the way.
// Plain Node, no build. Usage: node resend.js --url http://127.0.0.1:P [--batches 150] [--rate 100]
//   node resend.js --url ... --million 1000000 --pid PID
// With --prime N it sends the N batches of ingest.lua's MODE=cached one at a time, twice (the
// second pass finds them stored).
import { readFileSync } from 'node:fs'

const arg = (name, fallback) => (process.argv.includes(`--${name}`) ? process.argv[process.argv.indexOf(`--${name}`) + 1] : fallback)
const url = `${arg('url')}/api/embed`
const batches = Number(arg('batches', 150))
const rate = Number(arg('rate', 100))
const million = Number(arg('million', 0))
const run = Math.random().toString(36).slice(2, 10)
const body = (n) =>
  JSON.stringify({
    model: 'nomic-embed-text',
    input: Array.from({ length: 32 }, (_, i) => `document ${run}-${n}, chunk ${i}: corral caches embeddings of chunks for thirty days`),
  })

async function send(n) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body(n) })
  await res.arrayBuffer()
  if (res.status !== 200) throw new Error(`batch ${n}: status ${res.status}`)
  return res.headers.get('x-corral-cache')
}

const rssMiB = (pid) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024

const prime = Number(arg('prime', 0))
if (prime > 0) {
  for (let pass = 0; pass < 2; pass++) {
    for (let n = 0; n < prime; n++) {
      const input = Array.from({ length: 32 }, (_, i) => `cached document ${n}, chunk ${i + 1}: re-indexed chunks are answered from the cache`)
      const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'nomic-embed-text', input }) })
      await res.arrayBuffer()
    }
  }
} else if (million > 0) {
  const pid = Number(arg('pid'))
  const total = Math.ceil(million / 32)
  let next = 0
  const samples = []
  const worker = async () => {
    while (next < total) {
      const n = next++
      await send(n)
      if ((n + 1) % Math.ceil(total / 10) === 0) samples.push({ vectors: (n + 1) * 32, rss_mib: Math.round(rssMiB(pid)) })
    }
  }
  await Promise.all(Array.from({ length: Number(arg('conns', 2)) }, worker))
  console.log(`RESULT ${JSON.stringify({ vectors: total * 32, samples })}`)
} else {
  const first = []
  const start = performance.now()
  for (let n = 0; n < batches; n++) {
    const due = start + (n * 1000) / rate
    const wait = due - performance.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    first.push(send(n))
  }
  const firstStatus = await Promise.all(first)
  const again = await Promise.all(Array.from({ length: batches }, (_, n) => send(n)))
  const hits = again.filter((s) => s === 'hit').length
  console.log(`RESULT ${JSON.stringify({ batches, first_misses: firstStatus.filter((s) => s === 'miss').length, second_hits: hits })}`)
}
