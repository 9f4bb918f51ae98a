#!/usr/bin/env node
// The limit a balancer can reach on the balancing benchmark's fleet: the same arrival schedule
// and requests as load.js (same seed, rate, duration, token range), dispatched at once to the
// instance where each would finish first with perfect knowledge (shortest expected delay: every
// instance's FIFO and every request's exact work are known), on the same time model as the fleet (`corral demo --fleet-only`, src/demo/)
// (SLOTS parallel slots per instance, PROMPT_MS + tokens x TOKEN_MS, times the speed factor). No
// network, no proxy: the numbers a real balancer is compared with. Baseline scenario only.
//
// Usage: node bench/balance/simulate.js --rate 16.67 [--duration 60] [--seed 42]
//          [--instances n1:1,n2:1,n3:1,slow:3] [--slots 2] [--prompt-ms 40] [--token-ms 8]
//          [--tokens-min 10] [--tokens-max 60]
// Prints one JSON object: {policy, sent, latency_ms: {p50, p95, p99}, shares: {name: n}}.
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    rate: { type: 'string' },
    duration: { type: 'string', default: '60' },
    seed: { type: 'string', default: '42' },
    instances: { type: 'string', default: 'n1:1,n2:1,n3:1,slow:3' },
    slots: { type: 'string', default: '2' },
    'prompt-ms': { type: 'string', default: '40' },
    'token-ms': { type: 'string', default: '8' },
    'tokens-min': { type: 'string', default: '10' },
    'tokens-max': { type: 'string', default: '60' },
    'stream-share': { type: 'string', default: '0.5' },
    'chat-share': { type: 'string', default: '0.25' },
  },
});
if (!opts.rate) throw new Error('--rate is required');
const RATE = Number(opts.rate);
const DURATION = Number(opts.duration);
const SLOTS = Number(opts.slots);
const PROMPT_MS = Number(opts['prompt-ms']);
const TOKEN_MS = Number(opts['token-ms']);
const TMIN = Number(opts['tokens-min']);
const TMAX = Number(opts['tokens-max']);

// load.js's generator and schedule, draw for draw, so the requests are the same.
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
const rand = rng(Number(opts.seed));
const plan = [];
for (let t = 0; ; ) {
  t += -Math.log(1 - rand()) / RATE;
  if (t >= DURATION) break;
  rand(); // stream
  rand(); // chat
  const tokens = TMIN + Math.floor(rand() * (TMAX - TMIN + 1));
  rand(); // prompt words
  plan.push({ at: t * 1000, tokens });
}

const fleet = opts.instances.split(',').map((s) => {
  const [name, speed = '1'] = s.split(':');
  // When each slot frees (FIFO: a request starts on the earliest free slot, after the ones before it).
  return { name, speed: Number(speed), free: new Array(SLOTS).fill(0), served: 0 };
});

const latencies = [];
for (const req of plan) {
  let best;
  let bestEnd = Infinity;
  let bestSlot = -1;
  for (const inst of fleet) {
    let slot = 0;
    for (let s = 1; s < SLOTS; s++) if (inst.free[s] < inst.free[slot]) slot = s;
    const end = Math.max(req.at, inst.free[slot]) + (PROMPT_MS + req.tokens * TOKEN_MS) * inst.speed;
    if (end < bestEnd) {
      bestEnd = end;
      best = inst;
      bestSlot = slot;
    }
  }
  best.free[bestSlot] = bestEnd;
  best.served++;
  latencies.push(bestEnd - req.at);
}
latencies.sort((a, b) => a - b);
const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
process.stdout.write(
  JSON.stringify({
    policy: 'shortest-expected-delay (perfect knowledge)',
    sent: plan.length,
    latency_ms: { p50: q(0.5), p95: q(0.95), p99: q(0.99) },
    shares: Object.fromEntries(fleet.map((i) => [i.name, i.served])),
  }) + '\n',
);
