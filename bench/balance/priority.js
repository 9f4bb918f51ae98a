#!/usr/bin/env node
// Priority classes and fair shares (bench/README.md, "Priority classes"): one run, one corral,
// four phases, ratios against the quiet fleet.
//
// Fleet (in this process): INSTANCES of the shared fake Ollama (dist/demo/fake-ollama.js, the one
// of the tests and `corral demo`), each with an embedding runner and a chat runner of SLOTS
// parallel slots and a FIFO in front (as Ollama with an embedding and a chat model loaded,
// OLLAMA_NUM_PARALLEL=SLOTS). An embedding takes EMBED_MS plus 25 % per further input (a
// 32-chunk batch: 175 ms); a short chat takes CHAT_MS.
// Load: a user (key `user`) sends a one-input query embedding then a short chat every 250 ms;
// ingestion (key `ingest`) is BULK_CLIENTS clients sending BATCH-chunk /api/embed batches back to
// back (bulk by size); the flood (key `flood`) is FLOOD_CLIENTS clients sending one-input
// embeddings back to back (interactive, like the user: only fair shares protect the user).
// Phases of PHASE seconds: quiet (user alone), ingest (user + ingestion), flood (user + flood).
//
//   npm run build && node bench/balance/priority.js
//   PHASE=20 BULK_RESERVE=0.5 node bench/balance/priority.js
//   BULK_PART_SIZE=0 node bench/balance/priority.js   (batches never cut into parts)
import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import http from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const env = (name, fallback) => Number(process.env[name] ?? fallback)
const INSTANCES = env('INSTANCES', 2)
const SLOTS = env('SLOTS', 2)
const EMBED_MS = env('EMBED_MS', 20)
const CHAT_MS = env('CHAT_MS', 60)
const BATCH = env('BATCH', 32)
const BULK_CLIENTS = env('BULK_CLIENTS', 12)
const FLOOD_CLIENTS = env('FLOOD_CLIENTS', 12)
const USER_EVERY_MS = env('USER_EVERY_MS', 250)
const PHASE_S = env('PHASE', 15)
const BULK_RESERVE = process.env.BULK_RESERVE ?? '0.25'
// Inputs per part of a bulk batch (balancer.priority.bulk_part_size); unset: corral's default.
const BULK_PART_SIZE = process.env.BULK_PART_SIZE
const ROOT = fileURLToPath(new URL('../..', import.meta.url))

const embedMs = (inputs) => EMBED_MS * (1 + 0.25 * (inputs - 1))

const { startFakeOllama } = await import(join(ROOT, 'dist/demo/fake-ollama.js')).catch(() => {
  throw new Error('dist/demo is missing: run `npm run build` first')
})

/**
 * One instance: the shared fake Ollama (src/demo) with a runner per model of SLOTS slots and a
 * FIFO each, a chat of CHAT_MS (prompt time, no token time) and an embedding of EMBED_MS plus
 * 25 % per further input. Vectors come from a small pool and have 4 dimensions, so that relaying
 * them costs corral next to nothing and the figures are the scheduling's.
 */
function startInstance(_, i) {
  return startFakeOllama({
    name: `n${i}`,
    models: [{ name: 'llama3.2:latest' }, { name: 'nomic-embed-text:latest', embedding: true, dims: 4 }],
    loaded: ['llama3.2:latest', 'nomic-embed-text:latest'],
    numParallel: SLOTS,
    slotsPerModel: true,
    tokenDelayMs: 0,
    promptDelayMs: CHAT_MS,
    embedDelayMs: EMBED_MS,
    embedFurtherInputShare: 0.25,
    embeddingPool: 64,
    recordRequests: false,
  })
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 })

function post(base, path, key, payload) {
  const body = JSON.stringify(payload)
  const started = performance.now()
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${key}` } }, (res) => {
      res.resume()
      res.on('end', () => (res.statusCode === 200 ? resolve(performance.now() - started) : reject(new Error(`${path}: ${res.statusCode}`))))
    })
    req.on('error', reject)
    req.end(body)
  })
}

let unique = 0
const text = () => `chunk ${process.pid} ${unique++} of a document about rivers and their deltas`

/** The user: a query embedding then a short chat, every USER_EVERY_MS, until `until`. */
async function user(base, until, out) {
  while (performance.now() < until) {
    const tick = performance.now()
    out.query.push(await post(base, '/api/embed', KEYS.user, { model: 'nomic-embed-text', input: [text()] }))
    out.chat.push(await post(base, '/api/chat', KEYS.user, { model: 'llama3.2', messages: [{ role: 'user', content: text() }], stream: false }))
    const wait = tick + USER_EVERY_MS - performance.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
  }
}

/** Closed-loop clients sending `payload()` back to back until `until`; counts answers after `from`. */
async function loop(base, key, clients, payload, from, until) {
  let done = 0
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < until) {
        await post(base, '/api/embed', key, payload())
        if (performance.now() >= from) done++
      }
    }),
  )
  return done
}

const KEYS = { user: 'user-key-6c1f9a3e7b2d5804', ingest: 'ingest-key-2e8b4d6a1c9f3075', flood: 'flood-key-9d3a7c1e5b2f8046' }

function pct(values, p) {
  const s = [...values].sort((a, b) => a - b)
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}

async function phase(base, name, background) {
  const start = performance.now()
  const until = start + PHASE_S * 1000
  const warm = start + 2000 // the first two seconds fill the queue; not measured
  const out = { query: [], chat: [] }
  const user_ = (async () => {
    while (performance.now() < warm) await new Promise((r) => setTimeout(r, 50))
    await user(base, until, out)
  })()
  const batches = background === undefined ? 0 : await background(warm, until)
  await user_
  const seconds = (performance.now() - warm) / 1000
  return { name, out, perSecond: batches / seconds }
}

async function main() {
  const servers = await Promise.all(Array.from({ length: INSTANCES }, startInstance))
  const dir = mkdtempSync(join(tmpdir(), 'corral-priority-'))
  const config = join(dir, 'corral.yaml')
  writeFileSync(
    config,
    [
      'log:',
      '  level: warn',
      'cache:',
      '  enabled: false',
      'instances:',
      ...servers.map((s, i) => `  - { name: n${i}, url: "${s.url}", max_concurrency: ${SLOTS} }`),
      'balancer:',
      '  priority:',
      `    bulk_reserve: ${BULK_RESERVE}`,
      ...(BULK_PART_SIZE === undefined ? [] : [`    bulk_part_size: ${BULK_PART_SIZE}`]),
      'auth:',
      '  enabled: true',
      '  keys:',
      ...Object.entries(KEYS).map(([name, key]) => `    - { name: ${name}, key: ${key} }`),
    ].join('\n'),
  )
  const port = 20000 + Math.floor(Math.random() * 20000)
  const corral = spawn(process.execPath, [join(ROOT, 'bin/corral.js'), 'serve', '-c', config, '-l', `127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'inherit'] })
  const base = `http://127.0.0.1:${port}`
  try {
    for (let i = 0; ; i++) {
      try {
        await post(base, '/api/chat', KEYS.user, { model: 'llama3.2', messages: [], stream: false })
        break
      } catch (err) {
        if (i > 100) throw err
        await new Promise((r) => setTimeout(r, 100))
      }
    }
    const batch = () => ({ model: 'nomic-embed-text', input: Array.from({ length: BATCH }, text) })
    const single = () => ({ model: 'nomic-embed-text', input: [text()] })
    const quiet = await phase(base, 'fleet quiet', undefined)
    const ingest = await phase(base, 'while ingesting', (from, until) => loop(base, KEYS.ingest, BULK_CLIENTS, batch, from, until))
    const flood = await phase(base, 'another key flooding', (from, until) => loop(base, KEYS.flood, FLOOD_CLIENTS, single, from, until))
    const capacity = (INSTANCES * SLOTS * 1000) / embedMs(BATCH)
    const row = (p) => {
      const q50 = pct(p.out.query, 50), q95 = pct(p.out.query, 95), c50 = pct(p.out.chat, 50), c95 = pct(p.out.chat, 95)
      const r = (v, base_) => (v / base_).toFixed(2)
      return `| ${p.name} | ${q50.toFixed(0)} / ${q95.toFixed(0)} ms (${r(q50, pct(quiet.out.query, 50))}x / ${r(q95, pct(quiet.out.query, 95))}x) | ${c50.toFixed(0)} / ${c95.toFixed(0)} ms (${r(c50, pct(quiet.out.chat, 50))}x / ${r(c95, pct(quiet.out.chat, 95))}x) | ${p.out.query.length} |`
    }
    console.log(`${INSTANCES} instances x ${SLOTS} slots; batch of ${BATCH}: ${embedMs(BATCH)} ms; bulk_reserve ${BULK_RESERVE}; bulk_part_size ${BULK_PART_SIZE ?? 'default'}; phases of ${PHASE_S} s (first 2 s not measured)\n`)
    console.log('| | query embedding p50 / p95 (x quiet) | chat p50 / p95 (x quiet) | user turns |')
    console.log('| --- | ---: | ---: | ---: |')
    for (const p of [quiet, ingest, flood]) console.log(row(p))
    console.log(`\ningestion: ${ingest.perSecond.toFixed(1)} batches/s of a capacity of ${capacity.toFixed(1)} (${(ingest.perSecond / capacity).toFixed(2)}x)`)
    console.log(`flood key: ${flood.perSecond.toFixed(0)} embeddings/s`)
  } finally {
    corral.kill('SIGTERM')
    agent.destroy()
    await Promise.all(servers.map((s) => s.stop()))
  }
}

await main()
