#!/usr/bin/env node
// Open-loop load for the balancing benchmark (bench/README.md): Poisson arrivals at a fixed rate
// for a fixed time, from a seeded generator, so every target gets the very same arrival schedule
// and the very same requests. A request is sent at its scheduled time whatever happened to the
// ones before it (no client-side queueing: enough connections for all of them), and its latency
// is counted from its scheduled time, so a late load generator cannot hide a slow proxy.
//
// Requests: POST /api/generate (3 in 4) or /api/chat, streamed with probability --stream-share,
// `options.num_predict` uniform in [--tokens-min, --tokens-max] (this is what the fake fleet's
// work time depends on), and a prompt no other request has (so no cache can answer).
//
// Outcome of each request:
//   ok    status 200 and a complete answer (one JSON object, or NDJSON ending with done:true)
//   cut   a stream that had begun (status 200 received) and did not finish: an {"error"} line,
//         the body ending early, or the connection reset. No proxy may retry those.
//   lost  everything else: a non-200 status, a connection error before the response, a broken
//         non-streamed body, or no answer by the end of the drain time.
//
// Usage: node bench/balance/load.js --target http://127.0.0.1:P --rate 16.7 --duration 60
//          [--seed 42] [--fleet http://127.0.0.1:CONTROL] [--event 20:/kill?name=n1]...
//          [--drain 60] [--tag corral-rr] [--stream-share 0.5] [--tokens-min 10] [--tokens-max 60]
// --fleet: the fleet's control URL, to read its per-instance counters before and after.
// --event T:PATH: POST the fleet's control PATH T seconds into the run (kill, speed change).
// Prints one JSON object on stdout (see `summary` at the end).
import { parseArgs } from 'node:util';
import { Pool } from 'undici';

const { values: opts } = parseArgs({
  options: {
    target: { type: 'string' },
    rate: { type: 'string' },
    duration: { type: 'string', default: '60' },
    seed: { type: 'string', default: '42' },
    fleet: { type: 'string', default: '' },
    event: { type: 'string', multiple: true, default: [] },
    drain: { type: 'string', default: '' },
    tag: { type: 'string', default: 'run' },
    'stream-share': { type: 'string', default: '0.5' },
    'chat-share': { type: 'string', default: '0.25' },
    'tokens-min': { type: 'string', default: '10' },
    'tokens-max': { type: 'string', default: '60' },
    model: { type: 'string', default: 'llama3.2' },
  },
});
if (!opts.target || !opts.rate) throw new Error('--target and --rate are required');
const RATE = Number(opts.rate);
const DURATION = Number(opts.duration);
const DRAIN = opts.drain === '' ? Math.max(30, DURATION) : Number(opts.drain);
const TMIN = Number(opts['tokens-min']);
const TMAX = Number(opts['tokens-max']);

// mulberry32: small, fast, and the same sequence on every run for one seed.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// The schedule, all drawn up front so it depends on the seed only.
const rand = rng(Number(opts.seed));
const plan = [];
for (let t = 0, i = 0; ; i++) {
  t += -Math.log(1 - rand()) / RATE; // exponential inter-arrival times: a Poisson process
  if (t >= DURATION) break;
  plan.push({
    i,
    at: t * 1000, // ms after the start
    stream: rand() < Number(opts['stream-share']),
    chat: rand() < Number(opts['chat-share']),
    tokens: TMIN + Math.floor(rand() * (TMAX - TMIN + 1)),
    words: Math.floor(rand() * 1e9),
  });
}

const events = opts.event.map((e) => {
  const k = e.indexOf(':');
  return { at: Number(e.slice(0, k)) * 1000, path: e.slice(k + 1) };
});

async function fleetStats() {
  if (!opts.fleet) return undefined;
  const r = await fetch(`${opts.fleet}/stats`, { signal: AbortSignal.timeout(5000) });
  return (await r.json()).instances;
}

// Plenty of connections: open loop means no request ever waits for a free one here.
const pool = new Pool(opts.target, {
  connections: 4096,
  pipelining: 1,
  keepAliveTimeout: 120_000,
  headersTimeout: 0, // the drain deadline below is the only time limit
  bodyTimeout: 0,
});

const results = [];
const aborts = new Set();

async function one(p, t0) {
  const sent = performance.now();
  const r = { i: p.i, stream: p.stream, at: p.at, lateMs: sent - t0 - p.at, outcome: 'lost', kind: '', instance: '' };
  const cut = (kind) => {
    r.outcome = 'cut';
    r.kind = kind;
  };
  const ac = new AbortController();
  aborts.add(ac);
  const prompt = `${opts.tag} request ${p.i}: say something about ${p.words.toString(36)}`;
  const body = { model: opts.model, stream: p.stream, options: { num_predict: p.tokens } };
  if (p.chat) body.messages = [{ role: 'user', content: prompt }];
  else body.prompt = prompt;
  let status = 0;
  try {
    const res = await pool.request({
      method: 'POST',
      path: p.chat ? '/api/chat' : '/api/generate',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: ac.signal,
    });
    status = res.statusCode;
    r.instance = String(res.headers['x-instance'] ?? '');
    let text = '';
    res.body.setEncoding('utf8');
    for await (const c of res.body) {
      if (r.ttfbMs === undefined) r.ttfbMs = performance.now() - t0 - p.at;
      text += c;
    }
    r.latencyMs = performance.now() - t0 - p.at;
    if (status !== 200) {
      r.kind = `status ${status}`;
    } else if (!p.stream) {
      let obj;
      try {
        obj = JSON.parse(text);
      } catch {
        // a broken answer: obj stays undefined
      }
      if (obj?.done === true && !obj.error) r.outcome = 'ok';
      else r.kind = 'broken JSON answer';
    } else {
      const lines = text.split('\n').filter((l) => l !== '');
      let last;
      let error = false;
      for (const l of lines) {
        try {
          last = JSON.parse(l);
        } catch {
          last = undefined;
        }
        if (last?.error !== undefined) error = true;
      }
      if (error) cut('error line');
      else if (last?.done === true) r.outcome = 'ok';
      else cut('ended early');
    }
  } catch (err) {
    const code = err.cause?.code ?? err.code ?? err.name;
    if (ac.signal.aborted) r.kind = status ? 'unfinished (drain deadline)' : 'no answer (drain deadline)';
    else if (status === 200 && p.stream) cut(`reset (${code})`);
    else r.kind = status ? `status ${status}, then ${code}` : `no response (${code})`;
  }
  aborts.delete(ac);
  r.endMs = performance.now() - t0;
  results.push(r);
}

const before = await fleetStats();
const t0 = performance.now() + 100;
const inflight = [];
// One timer at a time, firing every request that is due: cheaper and more punctual than one
// timer per request.
await new Promise((resolve) => {
  let k = 0;
  const next = () => {
    const now = performance.now() - t0;
    while (k < plan.length && plan[k].at <= now) inflight.push(one(plan[k++], t0));
    if (k >= plan.length) return resolve();
    setTimeout(next, Math.max(0, plan[k].at - (performance.now() - t0)));
  };
  setTimeout(next, 100);
  for (const e of events) {
    setTimeout(() => {
      fetch(opts.fleet + e.path, { method: 'POST' })
        .then((res) => res.text())
        .then((t) => process.stderr.write(`[load] ${(e.at / 1000).toFixed(1)}s: ${e.path} -> ${t}\n`))
        .catch((err) => process.stderr.write(`[load] event ${e.path} failed: ${err.message}\n`));
    }, 100 + e.at);
  }
});
const arrivalsEnd = performance.now() - t0;
let gaveUp = false;
const drainTimer = setTimeout(() => {
  gaveUp = aborts.size > 0;
  aborts.forEach((ac) => ac.abort());
}, DRAIN * 1000);
await Promise.all(inflight);
clearTimeout(drainTimer);
const drainEnd = performance.now() - t0;
// Requests given up on are cancelled through the proxy: let that reach the fleet's counters.
if (gaveUp) await new Promise((r) => setTimeout(r, 500));
const after = await fleetStats();
await pool.close().catch(() => {});

// ---------------------------------------------------------------------------------------------
function pct(values, q) {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
}
const round = (v, d = 1) => (v === null || v === undefined ? null : Math.round(v * 10 ** d) / 10 ** d);
function latencies(rs) {
  const lat = rs.map((r) => r.latencyMs);
  const ttfb = rs.filter((r) => r.stream).map((r) => r.ttfbMs);
  return {
    n: rs.length,
    p50: round(pct(lat, 0.5)), p95: round(pct(lat, 0.95)), p99: round(pct(lat, 0.99)), max: round(pct(lat, 1)),
    ttfb_p50: round(pct(ttfb, 0.5)), ttfb_p95: round(pct(ttfb, 0.95)),
  };
}

const ok = results.filter((r) => r.outcome === 'ok');
const count = (rs, key) => rs.reduce((m, r) => ((m[r[key]] = (m[r[key]] ?? 0) + 1), m), {});
// Throughput over the middle 80 % of the arrival window, against the arrivals in that same
// window: the start (nothing completes yet) and the tail (arrivals stop) are left out, so a
// balancer that keeps up shows a ratio of ~1.00 whatever the run's length.
const w0 = DURATION * 100, w1 = DURATION * 900, wlen = (w1 - w0) / 1000;
const firstEvent = events.length ? Math.min(...events.map((e) => e.at)) : undefined;
const summary = {
  tag: opts.tag,
  target: opts.target,
  rate: RATE,
  duration_s: DURATION,
  seed: Number(opts.seed),
  events: opts.event,
  sent: results.length,
  ok: ok.length,
  lost: results.filter((r) => r.outcome === 'lost').length,
  cut: results.filter((r) => r.outcome === 'cut').length,
  kinds: count(results.filter((r) => r.outcome !== 'ok'), 'kind'),
  offered_rps: round(plan.filter((p) => p.at >= w0 && p.at < w1).length / wlen, 2),
  throughput_rps: round(ok.filter((r) => r.endMs >= w0 && r.endMs < w1).length / wlen, 2),
  latency_ms: latencies(ok),
  // Requests scheduled after the first event (the kill or the slowdown) only.
  after_event_ms: firstEvent === undefined ? undefined : latencies(ok.filter((r) => r.at >= firstEvent)),
  shares: count(ok, 'instance'), // who served the successful answers (X-Instance)
  fleet: after?.map((a, k) => {
    const b = before[k];
    const d = (f) => a[f] - b[f];
    return {
      name: a.name, alive: a.alive, speed: a.speed,
      received: d('received'), completed: d('completed'), cut: d('cut'), aborted: d('aborted'),
      timer_late_ms: a.timer_late_ms, // since the fleet started: fresh for each run in run.sh
    };
  }),
  // Sanity: how late the load generator sent requests, and how long the arrivals really took.
  send_late_ms: { p99: round(pct(results.map((r) => r.lateMs), 0.99)), max: round(pct(results.map((r) => r.lateMs), 1)) },
  arrivals_s: round(arrivalsEnd / 1000, 2),
  drain_s: round((drainEnd - arrivalsEnd) / 1000, 2),
};
process.stdout.write(JSON.stringify(summary) + '\n');
