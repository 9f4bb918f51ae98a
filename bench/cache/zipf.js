// Skewed RAG-like load for the cache benchmark (bench/README.md): CONNS concurrent clients send
// REQUESTS requests drawn from a zipf distribution over UNIVERSE distinct requests: query
// embeddings (one input), document batches (4 chunks each, chunks unique to their batch) and
// seeded generations (half streamed). Every answer must be 200. Prints one line:
//   RESULT {"requests":…, "distinct":…, "upstream_calls":…, "efficiency":…, "seconds":…, "errors":…}
// where efficiency = distinct requests sent / requests that reached the upstream (1 is ideal).
// --upstream is the stand-in fleet's control channel (`corral demo --fleet-only`), whose
// GET /bench/stats counts the calls that reached it.
// Usage: node zipf.js --url http://127.0.0.1:PORT --upstream http://127.0.0.1:CONTROL
//        [--requests 20000] [--conns 32] [--universe 3000] [--s 1.0] [--seed 1] [--tag run1]
import http from 'node:http'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i === -1 ? fallback : process.argv[i + 1]
}
const url = new URL(arg('url'))
const upstream = arg('upstream')
const total = Number(arg('requests', 20000))
const conns = Number(arg('conns', 32))
const universe = Number(arg('universe', 3000))
const s = Number(arg('s', 1.0))
const tag = arg('tag', 'run')
let seed = Number(arg('seed', 1))
const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)

// Zipf over ranks 1..universe; ranks are mapped to requests through a fixed shuffle so that
// popular requests are of every kind.
const cdf = new Float64Array(universe)
let sum = 0
for (let r = 1; r <= universe; r++) cdf[r - 1] = sum += 1 / r ** s
for (let i = 0; i < universe; i++) cdf[i] /= sum
const order = Array.from({ length: universe }, (_, i) => i)
for (let i = universe - 1; i > 0; i--) {
  const j = Math.floor(random() * (i + 1))
  ;[order[i], order[j]] = [order[j], order[i]]
}
function pick() {
  const u = random()
  let lo = 0
  let hi = universe - 1
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (cdf[mid] < u) lo = mid + 1
    else hi = mid
  }
  return order[lo]
}

function requestFor(item) {
  const kind = item % 10
  if (kind < 5) return ['/api/embed', { model: 'nomic-embed-text', input: `${tag} question ${item}` }]
  if (kind < 7) {
    const input = [0, 1, 2, 3].map((k) => `${tag} document ${item} chunk ${k}`)
    return ['/api/embed', { model: 'nomic-embed-text', input }]
  }
  return ['/api/generate', { model: 'llama3.2', prompt: `${tag} question ${item}`, options: { seed: 42 }, stream: item % 2 === 0 }]
}

const agent = new http.Agent({ keepAlive: true, maxSockets: conns })
function send(path, body) {
  return new Promise((resolve) => {
    const payload = JSON.stringify(body)
    const req = http.request(
      { host: url.hostname, port: url.port, path, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } },
      (res) => {
        res.resume()
        res.on('end', () => resolve(res.statusCode))
        res.on('error', () => resolve(0))
      },
    )
    req.on('error', () => resolve(0))
    req.end(payload)
  })
}

async function upstreamCalls() {
  const res = await fetch(`${upstream}/bench/stats`)
  return (await res.json()).calls
}

const before = await upstreamCalls()
const seen = new Set()
let next = 0
let errors = 0
const started = performance.now()
await Promise.all(
  Array.from({ length: conns }, async () => {
    while (next < total) {
      next++
      const item = pick()
      seen.add(item)
      const [path, body] = requestFor(item)
      if ((await send(path, body)) !== 200) errors++
    }
  }),
)
const seconds = (performance.now() - started) / 1000
const calls = (await upstreamCalls()) - before
agent.destroy()
console.log(`RESULT ${JSON.stringify({ requests: total, distinct: seen.size, upstream_calls: calls, efficiency: Math.round((seen.size / calls) * 10000) / 10000, seconds: Math.round(seconds * 100) / 100, errors })}`)
