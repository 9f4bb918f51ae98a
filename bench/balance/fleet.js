#!/usr/bin/env node
// A fleet of fake Ollama instances in one process, for the balancing benchmark (bench/README.md).
//
// Unlike bench/overhead/upstream.js (as fast as possible), these instances take time the way a
// GPU does, so that where a balancer sends work shows in latency:
//
//   - each instance has SLOTS parallel slots (Ollama's OLLAMA_NUM_PARALLEL) and a FIFO queue in
//     front of them; time spent queued counts toward the request's latency, as in Ollama;
//   - a request in a slot takes PROMPT_MS x speed until its first token (prompt eval), then
//     TOKEN_MS x speed per token, for `options.num_predict` tokens (set by the load generator, so
//     every balancer gets exactly the same work); slots do not slow each other down;
//   - the speed factor can be changed while running (in-progress requests slow down from their
//     next token on) and an instance can be killed: its listener closes and every socket is
//     destroyed, so new connections are refused and whatever was in flight is cut.
//
// Headers go out with the first token for streams and with the whole answer otherwise (Ollama
// schedules the runner before it writes headers), so a proxy can still retry a request that was
// queued or in prompt eval when its instance died, and cannot retry a stream that had begun.
//
// Every answer carries `X-Instance: <name>` so the load generator can tell who served it.
//
// Usage:
//   node bench/balance/fleet.js --instances n1:1,n2:1,n3:1,slow:3 [--slots 2] [--prompt-ms 40]
//        [--token-ms 8] [--control-port 0] [--ports p1,p2,...]
// Prints one JSON line on stdout once every listener is up:
//   {"control":"http://127.0.0.1:P","instances":[{"name":"n1","url":"http://127.0.0.1:P1","speed":1},...]}
//
// Control channel (HTTP on --control-port):
//   GET  /stats                     per instance: received, completed, cut, aborted, queued, ...
//   POST /kill?name=n1              close n1's listener and destroy all its sockets
//   POST /speed?name=n1&factor=6    set n1's speed factor (absolute; 1 = normal)
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    instances: { type: 'string', default: 'n1:1,n2:1,n3:1,slow:3' },
    ports: { type: 'string', default: '' },
    host: { type: 'string', default: '127.0.0.1' },
    slots: { type: 'string', default: '2' },
    'prompt-ms': { type: 'string', default: '40' },
    'token-ms': { type: 'string', default: '8' },
    'control-port': { type: 'string', default: '0' },
  },
});
const SLOTS = Number(opts.slots);
const PROMPT_MS = Number(opts['prompt-ms']);
const TOKEN_MS = Number(opts['token-ms']);
const HOST = opts.host;
// When the request does not say how many tokens it wants (a hand-made curl), answer with this many.
const DEFAULT_TOKENS = 35;

const MODEL = 'llama3.2:latest';
const DIGEST = 'a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72';
const DETAILS = { parent_model: '', format: 'gguf', family: 'llama', families: ['llama'], parameter_size: '3.2B', quantization_level: 'Q4_K_M' };
const TAGS = JSON.stringify({
  models: [{ name: MODEL, model: MODEL, modified_at: '2026-01-15T10:00:00Z', size: 2019393189, digest: DIGEST, details: DETAILS }],
});
const PS = JSON.stringify({
  models: [{ name: MODEL, model: MODEL, size: 3055676416, digest: DIGEST, details: DETAILS, expires_at: '2099-01-01T00:00:00Z', size_vram: 3055676416, context_length: 4096 }],
});
const WORDS = ['the', ' sky', ' is', ' blue', ' because', ' of', ' Rayleigh', ' scattering', ',', ' and', ' light', '.'];

/** One fake Ollama instance. */
class Instance {
  constructor(name, speed) {
    this.name = name;
    this.speed = speed;
    this.alive = true;
    this.queue = []; // FIFO of jobs waiting for a slot
    this.running = new Set(); // jobs holding a slot
    this.sockets = new Set();
    // Counters over generate/chat requests only (health checks and discovery are not work).
    this.received = 0;
    this.completed = 0;
    this.cut = 0; // in flight (queued or running) when the instance was killed
    this.aborted = 0; // the client (the proxy) went away first
    // How late token timers fire: on a busy machine every request takes longer than the model
    // says, whichever balancer is in front, and the benchmark should say so.
    this.lateSum = 0;
    this.lateN = 0;
    this.lateMax = 0;
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.keepAliveTimeout = 120_000; // Go's net/http keeps idle connections open: so do we
    this.server.headersTimeout = 0;
    this.server.requestTimeout = 0;
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  handle(req, res) {
    res.setHeader('X-Instance', this.name);
    const path = req.url.split('?')[0];
    if (req.method === 'POST' && (path === '/api/generate' || path === '/api/chat')) {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (c) => (body += c));
      req.on('end', () => this.generate(req, res, path === '/api/chat', body));
      return;
    }
    req.resume();
    if ((req.method === 'GET' || req.method === 'HEAD') && path === '/') return send(res, 200, 'Ollama is running', 'text/plain; charset=utf-8');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, JSON.stringify({ error: 'method not allowed' }));
    if (path === '/api/version') return send(res, 200, '{"version":"0.12.6"}');
    if (path === '/api/tags') return send(res, 200, TAGS);
    if (path === '/api/ps') return send(res, 200, PS);
    return send(res, 404, JSON.stringify({ error: 'not found' }));
  }

  generate(req, res, chat, raw) {
    let body;
    try {
      body = JSON.parse(raw);
    } catch {
      return send(res, 400, JSON.stringify({ error: 'invalid JSON body' }));
    }
    if (!this.alive) return; // killed while the body was arriving: the socket is gone already
    this.received++;
    const n = Number(body.options?.num_predict);
    const job = {
      chat,
      res,
      stream: body.stream !== false, // Ollama streams unless told not to
      tokens: Number.isInteger(n) && n > 0 ? Math.min(n, 10_000) : DEFAULT_TOKENS,
      arrived: process.hrtime.bigint(),
      started: 0n,
      timer: undefined,
      done: false,
    };
    // A proxy that gives up (client gone, timeout) frees its slot or its place in the queue, as
    // Ollama cancels a request whose client disconnected.
    res.on('close', () => {
      if (job.done) return;
      job.done = true;
      clearTimeout(job.timer);
      if (this.alive) this.aborted++;
      const q = this.queue.indexOf(job);
      if (q >= 0) this.queue.splice(q, 1);
      else if (this.running.delete(job)) this.dispatch();
    });
    this.queue.push(job);
    this.dispatch();
  }

  dispatch() {
    while (this.alive && this.running.size < SLOTS && this.queue.length > 0) {
      const job = this.queue.shift();
      job.started = process.hrtime.bigint();
      this.run(job);
    }
  }

  // Prompt eval, then one token at a time: token i is out at PROMPT_MS + i x TOKEN_MS (times the
  // speed factor). Each step reads the speed factor when it is scheduled, so a slowdown applies to
  // requests already running. Steps are chained from the time they were due, not from when the
  // timer fired, so timer lateness on a busy machine does not add up.
  run(job) {
    this.running.add(job);
    const promptMs = PROMPT_MS * this.speed;
    let next = performance.now() + promptMs + TOKEN_MS * this.speed; // when the next token is out
    let produced = 0;
    const text = [];
    const tick = () => {
      const now = performance.now();
      const late = Math.max(0, now - next);
      this.lateSum += late;
      this.lateN++;
      if (late > this.lateMax) this.lateMax = late;
      while (next <= now + 0.5 && produced < job.tokens) {
        const tok = WORDS[produced % WORDS.length];
        produced++;
        text.push(tok);
        if (job.stream) {
          if (produced === 1) job.res.writeHead(200, { 'Content-Type': 'application/x-ndjson' });
          job.res.write(JSON.stringify(chunk(job.chat, tok, false)) + '\n');
        }
        if (produced < job.tokens) next += TOKEN_MS * this.speed;
      }
      if (produced < job.tokens) {
        job.timer = setTimeout(tick, next - now);
        return;
      }
      job.done = true;
      this.running.delete(job);
      const end = process.hrtime.bigint();
      const promptNs = Math.round(promptMs * 1e6);
      const final = {
        ...chunk(job.chat, job.stream ? '' : text.join(''), true),
        done_reason: 'stop',
        total_duration: Number(end - job.arrived),
        load_duration: 0,
        prompt_eval_count: 26,
        prompt_eval_duration: promptNs,
        eval_count: produced,
        eval_duration: Number(end - job.started) - promptNs,
      };
      if (!job.chat) final.context = [128006, 9125, 128007];
      if (job.stream) job.res.end(JSON.stringify(final) + '\n');
      else send(job.res, 200, JSON.stringify(final));
      this.completed++;
      this.dispatch();
    };
    job.timer = setTimeout(tick, next - performance.now());
  }

  kill() {
    if (!this.alive) return;
    this.alive = false;
    this.server.close();
    for (const s of this.sockets) s.destroy();
    // Whatever was queued or running dies with its socket ('close' events come later and find
    // these jobs done, so they are not counted as aborted too).
    for (const job of [...this.queue, ...this.running]) {
      job.done = true;
      clearTimeout(job.timer);
      this.cut++;
    }
    this.queue = [];
    this.running.clear();
  }

  stats() {
    return {
      name: this.name, url: this.url, speed: this.speed, alive: this.alive,
      received: this.received, completed: this.completed, cut: this.cut, aborted: this.aborted,
      running: this.running.size, queued: this.queue.length,
      timer_late_ms: { mean: this.lateN ? +(this.lateSum / this.lateN).toFixed(2) : 0, max: +this.lateMax.toFixed(1) },
    };
  }
}

function chunk(chat, text, done) {
  const c = { model: MODEL, created_at: new Date().toISOString() };
  if (chat) c.message = { role: 'assistant', content: text };
  else c.response = text;
  c.done = done;
  return c;
}

function send(res, status, body, type = 'application/json; charset=utf-8') {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

// ---------------------------------------------------------------------------------------------
const specs = opts.instances.split(',').map((s) => {
  const [name, speed = '1'] = s.split(':');
  return { name, speed: Number(speed) };
});
const ports = opts.ports ? opts.ports.split(',').map(Number) : [];
const fleet = specs.map((s) => new Instance(s.name, s.speed));
const byName = new Map(fleet.map((i) => [i.name, i]));

await Promise.all(
  fleet.map(
    (inst, i) =>
      new Promise((resolve, reject) => {
        inst.server.once('error', reject);
        inst.server.listen(ports[i] ?? 0, HOST, () => {
          inst.url = `http://${HOST}:${inst.server.address().port}`;
          resolve();
        });
      }),
  ),
);

const control = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  const inst = byName.get(url.searchParams.get('name') ?? '');
  const reply = (status, obj) => send(res, status, JSON.stringify(obj));
  req.resume();
  if (req.method === 'GET' && url.pathname === '/stats') return reply(200, { instances: fleet.map((i) => i.stats()) });
  if (req.method !== 'POST') return reply(404, { error: 'not found' });
  if (!inst) return reply(404, { error: `no instance ${url.searchParams.get('name')}` });
  if (url.pathname === '/kill') {
    inst.kill();
    return reply(200, inst.stats());
  }
  if (url.pathname === '/speed') {
    const f = Number(url.searchParams.get('factor'));
    if (!(f > 0)) return reply(400, { error: 'factor must be > 0' });
    inst.speed = f;
    return reply(200, inst.stats());
  }
  return reply(404, { error: 'not found' });
});
await new Promise((r) => control.listen(Number(opts['control-port']), HOST, r));

process.stdout.write(
  JSON.stringify({
    control: `http://${HOST}:${control.address().port}`,
    slots: SLOTS, prompt_ms: PROMPT_MS, token_ms: TOKEN_MS,
    instances: fleet.map((i) => ({ name: i.name, url: i.url, speed: i.speed })),
  }) + '\n',
);
const stop = () => process.exit(0);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
