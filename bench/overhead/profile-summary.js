#!/usr/bin/env node
// Summarise a V8 .cpuprofile (from `node --cpu-prof`): top functions by self time, and self time
// grouped by where the code lives (corral's dist/, undici, pino, node internals, GC, ...).
//
// Usage: node bench/overhead/profile-summary.js FILE.cpuprofile [--top 25]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { top: { type: 'string', default: '25' } },
});
if (positionals.length !== 1) {
  console.error('usage: profile-summary.js FILE.cpuprofile [--top N]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(positionals[0], 'utf8'));
const top = Number(values.top);

// Self time of a node = the sampling intervals attributed to it (timeDeltas[i] belongs to samples[i]).
const selfUs = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const id = profile.samples[i];
  selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}

function where(url) {
  if (!url) return '';
  if (url.startsWith('node:')) return url;
  const nm = url.lastIndexOf('node_modules/');
  if (nm !== -1) return url.slice(nm + 'node_modules/'.length);
  const dist = url.indexOf('/dist/');
  if (dist !== -1) return url.slice(dist + 1);
  return url.replace(/^file:\/\//, '');
}
function group(frame) {
  const { functionName: fn, url } = frame;
  if (!url) {
    if (fn === '(garbage collector)') return 'GC';
    if (fn === '(idle)') return 'idle';
    if (fn === '(program)') return 'V8/native (program)';
    return `native: ${fn || '(anonymous)'}`;
  }
  if (url.startsWith('node:')) return 'node internals (' + url.replace(/^node:internal\//, '').split('/')[0] + ')';
  const nm = url.lastIndexOf('node_modules/');
  if (nm !== -1) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/');
    return 'dependency ' + (rest[0].startsWith('@') ? rest[0] + '/' + rest[1] : rest[0]);
  }
  if (url.includes('/dist/')) return 'corral dist/';
  return url;
}

const frameKey = (f) => `${f.functionName || '(anonymous)'}  ${where(f.url)}${f.url ? ':' + (f.lineNumber + 1) : ''}`;
const byFunction = new Map();
const byGroup = new Map();
let total = 0;
let idle = 0;
for (const node of profile.nodes) {
  const us = selfUs.get(node.id) ?? 0;
  if (us === 0) continue;
  total += us;
  const f = node.callFrame;
  if (f.functionName === '(idle)') idle += us;
  const key = frameKey(f);
  byFunction.set(key, (byFunction.get(key) ?? 0) + us);
  const g = group(f);
  byGroup.set(g, (byGroup.get(g) ?? 0) + us);
}
const busy = total - idle;

// Inclusive (total) time: every function on a sample's stack gets the sample once, however many
// times it appears (recursion). Shown for corral's own code, where the answer is what to change.
const parent = new Map();
const nodeById = new Map();
for (const node of profile.nodes) {
  nodeById.set(node.id, node);
  for (const child of node.children ?? []) parent.set(child, node.id);
}
const inclusive = new Map();
for (const [id, us] of selfUs) {
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const f = nodeById.get(cur).callFrame;
    if (!f.url || !f.url.includes('/dist/') || f.url.includes('node_modules/')) continue;
    const key = frameKey(f);
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + us);
  }
}
const pct = (us) => ((100 * us) / busy).toFixed(1).padStart(5) + '%';
const ms = (us) => (us / 1000).toFixed(0).padStart(7) + ' ms';

console.log(`profile: ${(total / 1e6).toFixed(1)} s sampled, ${(busy / 1e6).toFixed(1)} s busy (${((100 * busy) / total).toFixed(0)}%); percentages are of busy time`);
console.log('\nself time by origin:');
for (const [g, us] of [...byGroup].filter(([g]) => g !== 'idle').sort((a, b) => b[1] - a[1]).slice(0, 15)) {
  console.log(`  ${pct(us)} ${ms(us)}  ${g}`);
}
console.log(`\ntop ${top} functions by self time:`);
for (const [k, us] of [...byFunction].filter(([k]) => !k.startsWith('(idle)')).sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`  ${pct(us)} ${ms(us)}  ${k}`);
}
console.log(`\ncorral's functions by inclusive time (self + everything they call):`);
for (const [k, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) {
  console.log(`  ${pct(us)} ${ms(us)}  ${k}`);
}
