// Stand-in Ollama for the cache benchmark (bench/README.md): answers /api/embed (768-dimension
// normalised float32 vectors, one per input, in Ollama's JSON with shortest float32 text) and
// /api/generate (a short deterministic answer, streamed or not), deterministically from the
// request, and counts what reaches it: GET /bench/stats -> {"calls": N, "distinct": D, "inputs": I}
// (distinct = distinct request bodies minus stream/keep_alive; inputs = embedding inputs embedded).
// With --precomputed, /api/embed and /api/embeddings answer from a pool of 256 vectors made at
// start (picked by a cheap hash of each input), so the stand-in costs little per vector and the
// ingestion benchmark (ingest.sh) measures the proxy, not the stand-in.
// Plain Node, no build. Usage: node upstream.js --port 0 [--delay MS] [--precomputed]
import { createHash } from 'node:crypto'
import { createServer } from 'node:http'

const args = process.argv.slice(2)
const port = Number(args[args.indexOf('--port') + 1] || 0)
const delayMs = Number(args.includes('--delay') ? args[args.indexOf('--delay') + 1] : 0)
const precomputed = args.includes('--precomputed')
let calls = 0
let inputs = 0
const distinct = new Set()
const MODELS = ['nomic-embed-text:latest', 'llama3.2:latest'].map((name) => ({
  name,
  model: name,
  modified_at: '2026-11-01T00:00:00Z',
  digest: createHash('sha256').update(name).digest('hex'),
}))
const TAGS = JSON.stringify({ models: MODELS })
const PS = JSON.stringify({ models: MODELS.map((m) => ({ ...m, expires_at: '2318-01-01T00:00:00Z' })) })

function float32Shortest(f) {
  for (let d = 1; d <= 9; d++) {
    const c = Number(f.toPrecision(d))
    if (Math.fround(c) === f) return c
  }
  return f
}

function vector(text) {
  const raw = []
  for (let block = 0; raw.length < 768; block++) {
    const h = createHash('sha256').update(`${text}\0${block}`).digest()
    for (let i = 0; i < 32 && raw.length < 768; i += 4) raw.push(Math.fround(h.readInt32LE(i) / 2 ** 31))
  }
  let sum = 0
  for (const x of raw) sum = Math.fround(sum + Math.fround(x * x))
  const norm = Math.fround(1 / Math.sqrt(sum))
  return raw.map((x) => float32Shortest(Math.fround(x * norm)))
}

/** The pool of --precomputed: each vector's JSON text, as Ollama prints it. */
const POOL = precomputed ? Array.from({ length: 256 }, (_, i) => Buffer.from(JSON.stringify(vector(`pool ${i}`)))) : []
const COMMA = Buffer.from(',')
function pooled(text) {
  let h = 2166136261
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619)
  return POOL[(h >>> 0) % POOL.length]
}

const server = createServer((req, res) => {
  const chunks = []
  req.on('data', (c) => chunks.push(c))
  req.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8')
    if (req.url === '/bench/stats') {
      const body = JSON.stringify({ calls, distinct: distinct.size, inputs })
      return res.end(body)
    }
    if (req.url === '/api/version' || req.url === '/') return res.end('{"version":"0.12.6"}')
    // Listed with digests: corral's cache keys need them (it passes unknown models through).
    if (req.url === '/api/tags') return res.end(TAGS)
    if (req.url === '/api/ps') return res.end(PS)
    let body
    try {
      body = JSON.parse(text)
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' })
      return res.end('{"error":"bad json"}')
    }
    calls++
    const { stream, keep_alive: _k, ...identity } = body
    distinct.add(`${req.url}\n${JSON.stringify(identity)}`)
    const answer = () => {
      if (req.url === '/api/embed') {
        const list = Array.isArray(body.input) ? body.input : [body.input]
        inputs += list.length
        if (precomputed) {
          // The answer's parts are written as they are (no joined copy): the stand-in costs little per vector.
          const parts = [Buffer.from(`{"model":${JSON.stringify(body.model)},"embeddings":[`)]
          list.forEach((text, i) => parts.push(...(i === 0 ? [] : [COMMA]), pooled(text)))
          parts.push(Buffer.from(`],"total_duration":12000000,"load_duration":1000000,"prompt_eval_count":${list.length * 8}}`))
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': parts.reduce((n, p) => n + p.length, 0) })
          res.cork()
          for (const part of parts) res.write(part)
          res.end()
          res.uncork()
          return
        }
        const out = JSON.stringify({
          model: body.model,
          embeddings: list.map(vector),
          total_duration: 12_000_000,
          load_duration: 1_000_000,
          prompt_eval_count: list.length * 8,
        })
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(out) })
        return res.end(out)
      }
      if (req.url === '/api/embeddings') {
        inputs++
        const text = precomputed ? pooled(String(body.prompt)).toString('latin1') : JSON.stringify(vector(String(body.prompt)))
        const out = `{"embedding":${text}}`
        res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(out) })
        return res.end(out)
      }
      if (req.url === '/api/generate') {
        const h = createHash('sha256').update(JSON.stringify(identity)).digest('hex')
        const words = ['The', ' llama', ' grazes', ' on', ' a', ' hill', ' ' + h.slice(0, 8), '.']
        const final = { done: true, done_reason: 'stop', context: [1, 2, 3], total_duration: 5e8, load_duration: 1e6, prompt_eval_count: 12, prompt_eval_duration: 1e6, eval_count: words.length, eval_duration: 4e8 }
        const now = new Date().toISOString()
        if (stream === false) {
          const out = JSON.stringify({ model: body.model, created_at: now, response: words.join(''), ...final })
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(out) })
          return res.end(out)
        }
        res.writeHead(200, { 'content-type': 'application/x-ndjson' })
        for (const w of words) res.write(JSON.stringify({ model: body.model, created_at: now, response: w, done: false }) + '\n')
        return res.end(JSON.stringify({ model: body.model, created_at: now, response: '', ...final }) + '\n')
      }
      res.writeHead(404, { 'content-type': 'text/plain' })
      res.end('404 page not found')
    }
    if (delayMs > 0) setTimeout(answer, delayMs)
    else answer()
  })
})
server.keepAliveTimeout = 120_000
server.listen(port, '127.0.0.1', () => console.log(`listening ${server.address().port}`))
