#!/usr/bin/env node
// Renders the balancing benchmark's results dir (meta.json + one JSON per scenario and target,
// written by run.sh and load.js) as Markdown: one table per scenario, then what is worth knowing
// about each row (errors by kind, retries seen by the fleet, goals).
//
// Usage: node bench/balance/report.js DIR
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) throw new Error('usage: report.js RESULTS_DIR');
const meta = JSON.parse(readFileSync(join(dir, 'meta.json'), 'utf8'));
const names = meta.instances.split(',').map((s) => s.split(':')[0]);
const pct = (x) => `${Math.round(x * 100)}%`;
const ms = (v) => (v === null || v === undefined ? '–' : `${Math.round(v)}`);
const x2 = (v) => `${v.toFixed(2)}x`;

const DESCRIPTIONS = {
  baseline: 'steady load, every instance healthy.',
  kill: `instance \`${meta.kill}\` killed at ${meta.event_at} s (listener closed, every socket destroyed). ` +
    `The fleet's capacity drops to ${meta.capacity_after_kill.toFixed(1)} req/s, so the offered rate is ` +
    `${pct(meta.rate / meta.capacity_after_kill)} of what is left.`,
  slowdown: `instance \`${meta.slow}\` ${meta.slow_factor}x slower from ${meta.event_at} s on (requests in progress too). ` +
    `The fleet's capacity drops to ${meta.capacity_after_slowdown.toFixed(1)} req/s, so the offered rate is ` +
    `${pct(meta.rate / meta.capacity_after_slowdown)} of what is left.`,
};

// The simulated shortest-expected-delay limit (simulate.js), when run.sh wrote it.
const limitFile = join(dir, 'limit.json');
const limit = existsSync(limitFile) ? JSON.parse(readFileSync(limitFile, 'utf8')) : null;

const out = [];
const p = (s = '') => out.push(s);
p(`Balancing benchmark, ${meta.date}: nproc ${meta.nproc}, node ${meta.node}, nginx ${meta.nginx}, HAProxy ${meta.haproxy}, corral ${meta.corral}.`);
p(
  `Fleet: ${meta.instances} (name:speed factor), ${meta.slots} slots each + FIFO queue; work per request ` +
    `${meta.prompt_ms} ms + ${meta.tokens_min}..${meta.tokens_max} tokens x ${meta.token_ms} ms, times the speed factor. ` +
    `Capacity ${meta.capacity.toFixed(2)} req/s; offered ${meta.rate} req/s (${pct(meta.rate / meta.capacity)}), ` +
    `Poisson, seed ${meta.seed}, ${meta.duration} s per run, half streamed.` +
    (meta.max_concurrency ? ` corral: max_concurrency ${meta.max_concurrency} per instance.` : ''),
);
p(
  'Throughput: successful answers completed per second during the middle 80 % of the run, next to the arrivals in that window ' +
    '("offered"). Latency: from the scheduled send time to the last byte, successful answers only. ' +
    'Share: which instance served the successful answers.',
);

for (const scenario of meta.scenarios.split(/\s+/).filter(Boolean)) {
  const rows = meta.targets.map((t) => {
    const file = join(dir, `${scenario}-${t.name.replace(/:/g, '-')}.json`);
    return { ...t, r: existsSync(file) ? JSON.parse(readFileSync(file, 'utf8') || 'null') : null };
  });
  const nginx = rows.find((t) => t.name === 'nginx')?.r;
  const event = scenario !== 'baseline';
  p();
  p(`### ${scenario}: ${DESCRIPTIONS[scenario]}`);
  p();
  p(
    `| target | req/s | offered | p50 ms | p95 ms | p99 ms | stream TTFB p95 ms |${event ? ' p95 after event ms |' : ''} ok | lost | cut streams | share ${names.join(' / ')} | p95 vs nginx |`,
  );
  p(`| --- | ---: | ---: | ---: | ---: | ---: | ---: |${event ? ' ---: |' : ''} ---: | ---: | ---: | --- | ---: |`);
  const notes = [];
  for (const t of rows) {
    const r = t.r;
    if (!r) {
      p(`| ${t.name} | ${t.note || 'not run'} |`);
      continue;
    }
    const l = r.latency_ms;
    const share = names.map((n) => pct((r.shares[n] ?? 0) / Math.max(1, r.ok))).join(' / ');
    const ratio = nginx && nginx.latency_ms.p95 ? x2(l.p95 / nginx.latency_ms.p95) : '–';
    p(
      `| ${t.name} | ${r.throughput_rps.toFixed(2)} | ${r.offered_rps.toFixed(2)} | ${ms(l.p50)} | ${ms(l.p95)} | ${ms(l.p99)} | ${ms(l.ttfb_p95)} |` +
        `${event ? ` ${ms(r.after_event_ms?.p95)} |` : ''} ${r.ok} | ${r.lost} | ${r.cut} | ${share} | ${t.name === 'nginx' ? '1.00x' : ratio} |`,
    );
    const shareSum = Object.values(r.shares).reduce((a, b) => a + b, 0);
    if (shareSum !== r.ok) notes.push(`- ${t.name}: shares add up to ${shareSum}, not ${r.ok} (answers without X-Instance)`);
    if (r.ok + r.lost + r.cut !== r.sent) notes.push(`- ${t.name}: ok + lost + cut = ${r.ok + r.lost + r.cut}, sent ${r.sent}`);
    const kinds = Object.entries(r.kinds).map(([k, n]) => `${n} ${k}`).join(', ');
    if (kinds) notes.push(`- ${t.name}: failures: ${kinds}`);
    // Requests that reached an instance, retries included (a refused connection never does).
    const received = r.fleet?.reduce((a, f) => a + f.received, 0);
    if (received !== undefined && (received !== r.sent || r.fleet.some((f) => f.cut || f.aborted))) {
      const per = r.fleet.map((f) => `${f.name} ${f.received}${f.cut ? ` (${f.cut} cut by the kill)` : ''}${f.aborted ? ` (${f.aborted} abandoned by the proxy)` : ''}`).join(', ');
      notes.push(`- ${t.name}: the fleet received ${received} requests for ${r.sent} sent: ${per}`);
    }
    const refusedFile = join(dir, `${scenario}-${t.name.replace(/:/g, '-')}.refused`);
    const refused = existsSync(refusedFile) ? readFileSync(refusedFile, 'utf8').trim() : '';
    if (scenario === 'kill' && refused !== '') notes.push(`- ${t.name}: ${refused} attempts refused by the dead instance (proxy log), each retried elsewhere`);
    const late = r.fleet ? Math.max(...r.fleet.map((f) => f.timer_late_ms?.mean ?? 0)) : 0;
    if (late > 2) notes.push(`- ${t.name}: the fleet's token timers fired ${late.toFixed(1)} ms late on average (8 ms per token at speed 1): busy machine, work took longer than the model says`);
    if (r.send_late_ms.max > 50) notes.push(`- ${t.name}: the load generator sent up to ${Math.round(r.send_late_ms.max)} ms late (busy machine)`);
    if (t.name.startsWith('corral') && nginx) {
      const goals = [`p95 ${x2(l.p95 / nginx.latency_ms.p95)} nginx's (goal <= 0.6x: ${l.p95 <= 0.6 * nginx.latency_ms.p95 ? 'met' : 'missed'})`];
      if (scenario === 'kill') goals.push(`lost ${r.lost} (goal 0: ${r.lost === 0 ? 'met' : 'missed'}), ${r.cut} cut streams`);
      else goals.push(`errors ${r.lost + r.cut} (goal 0: ${r.lost + r.cut === 0 ? 'met' : 'missed'})`);
      if (scenario === 'baseline') {
        const ratio = r.throughput_rps / r.offered_rps;
        goals.push(`throughput ${pct(ratio)} of offered (goal ~100%, >= 95% counted as met: ${ratio >= 0.95 ? 'met' : 'missed'})`);
      }
      notes.push(`- ${t.name}: ${goals.join('; ')}`);
    }
  }
  if (scenario === 'baseline' && limit) {
    const l = limit.latency_ms;
    const share = names.map((n) => pct((limit.shares[n] ?? 0) / Math.max(1, limit.sent))).join(' / ');
    p(`| limit (simulated shortest expected delay) | | | ${ms(l.p50)} | ${ms(l.p95)} | ${ms(l.p99)} | | | | | ${share} | ${nginx ? x2(l.p95 / nginx.latency_ms.p95) : '–'} |`);
    for (const t of rows) {
      if (!t.r || !t.name.startsWith('corral')) continue;
      const c = t.r.latency_ms;
      notes.push(`- ${t.name} against the limit: p50 ${x2(c.p50 / l.p50)}, p95 ${x2(c.p95 / l.p95)} (goal <= 1.05x each: ${c.p50 <= 1.05 * l.p50 && c.p95 <= 1.05 * l.p95 ? 'met' : 'missed'})`);
    }
  }
  if (notes.length) {
    p();
    notes.forEach((n) => p(n));
  }
}
process.stdout.write(out.join('\n') + '\n');
