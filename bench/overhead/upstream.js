#!/usr/bin/env node
// Fast stand-in for one Ollama instance, for the overhead benchmark (bench/README.md).
//
// It answers from bytes built once at start-up, so that the upstream costs as little CPU as
// possible and the benchmark measures the proxy in front of it, not the fake model. Two
// implementations:
//
//   --impl net   (default) a minimal HTTP/1.1 responder on node:net. It reads only what it must:
//                the request line, Content-Length / Transfer-Encoding / Connection, and, for
//                /api/generate, whether the body says "stream": false. Keep-alive and
//                pipelining are supported; the whole response (head + body) is one write.
//   --impl http  the same answers through node:http, as a cross-check of the raw responder.
//
// Routes: POST /api/generate (application/json when the body has "stream":false, otherwise an
// NDJSON stream of a few chunks, like Ollama whose `stream` defaults to true; --mode json|ndjson
// forces one), GET/HEAD /, /api/version, /api/tags, /api/ps (so a proxy's health checks and model
// discovery see a healthy instance that has llama3.2:latest). Anything else: 404 {"error":...}.
//
// Usage: node bench/overhead/upstream.js [--port 0] [--host 127.0.0.1] [--impl net|http]
//                                         [--mode auto|json|ndjson]
// Prints `listening http://HOST:PORT` on stdout once it accepts connections.
import net from 'node:net';
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values: opts } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.PORT ?? '0' },
    host: { type: 'string', default: '127.0.0.1' },
    impl: { type: 'string', default: 'net' },
    mode: { type: 'string', default: 'auto' },
  },
});
if (!['net', 'http'].includes(opts.impl)) throw new Error(`--impl must be net or http, not ${opts.impl}`);
if (!['auto', 'json', 'ndjson'].includes(opts.mode)) throw new Error(`--mode must be auto, json or ndjson`);

// ---------------------------------------------------------------------------------------------
// Precomputed bodies: shaped like Ollama 0.x answers for llama3.2 (see shared OLLAMA-API.md §2).
const MODEL = 'llama3.2';
const CREATED_AT = '2026-01-15T10:21:09.538216Z';
const DIGEST = 'a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72';
const ANSWER =
  'The sky appears blue because of Rayleigh scattering. Sunlight is made of many wavelengths, ' +
  'and when it enters the atmosphere the short blue wavelengths are scattered by nitrogen and ' +
  'oxygen molecules far more strongly than the longer red ones, so blue light reaches your eyes ' +
  'from every direction of the sky.';
// Ollama's `context` is the token ids of prompt + answer: a few hundred small integers.
const CONTEXT = Array.from({ length: 160 }, (_, i) => (i * 7919 + 128006) % 128256);
const METRICS = {
  total_duration: 2143598125,
  load_duration: 20185542,
  prompt_eval_count: 31,
  prompt_eval_duration: 91000000,
  eval_count: 74,
  eval_duration: 2030000000,
};

const generateJson = Buffer.from(
  JSON.stringify({
    model: MODEL,
    created_at: CREATED_AT,
    response: ANSWER,
    done: true,
    done_reason: 'stop',
    context: CONTEXT,
    ...METRICS,
  }),
);

// NDJSON: the answer split in 8 pieces, one line per chunk, then the final `done` line.
const PIECES = 8;
const ndjsonLines = [];
for (let i = 0; i < PIECES; i++) {
  const step = Math.ceil(ANSWER.length / PIECES);
  ndjsonLines.push(
    JSON.stringify({ model: MODEL, created_at: CREATED_AT, response: ANSWER.slice(i * step, (i + 1) * step), done: false }) + '\n',
  );
}
ndjsonLines.push(
  JSON.stringify({ model: MODEL, created_at: CREATED_AT, response: '', done: true, done_reason: 'stop', context: CONTEXT, ...METRICS }) + '\n',
);

const modelEntry = {
  name: `${MODEL}:latest`,
  model: `${MODEL}:latest`,
  modified_at: '2026-01-10T08:00:00.000000Z',
  size: 2019393189,
  digest: DIGEST,
  details: {
    parent_model: '',
    format: 'gguf',
    family: 'llama',
    families: ['llama'],
    parameter_size: '3.2B',
    quantization_level: 'Q4_K_M',
  },
};
const tagsJson = Buffer.from(JSON.stringify({ models: [modelEntry] }));
const psJson = Buffer.from(
  JSON.stringify({
    models: [{ ...modelEntry, expires_at: '2099-01-01T00:00:00Z', size_vram: 2019393189, context_length: 4096 }],
  }),
);
const versionJson = Buffer.from('{"version":"0.12.6"}');
const rootText = Buffer.from('Ollama is running');
const notFoundJson = Buffer.from('{"error":"404 page not found"}');

// ---------------------------------------------------------------------------------------------
// Answers. Each is { status, type, body } or { status, type, chunks } (chunked NDJSON).
const ANSWERS = {
  json: { status: 200, type: 'application/json; charset=utf-8', body: generateJson },
  ndjson: { status: 200, type: 'application/x-ndjson', chunks: ndjsonLines.map((l) => Buffer.from(l)) },
  tags: { status: 200, type: 'application/json; charset=utf-8', body: tagsJson },
  ps: { status: 200, type: 'application/json; charset=utf-8', body: psJson },
  version: { status: 200, type: 'application/json; charset=utf-8', body: versionJson },
  root: { status: 200, type: 'text/plain; charset=utf-8', body: rootText },
  notFound: { status: 404, type: 'application/json; charset=utf-8', body: notFoundJson },
};
const REASONS = { 200: 'OK', 404: 'Not Found' };

/** Which answer a request gets. `body` is only looked at for /api/generate. */
function route(method, path, body) {
  const q = path.indexOf('?');
  if (q !== -1) path = path.slice(0, q);
  if (path === '/api/generate' && method === 'POST') {
    if (opts.mode !== 'auto') return opts.mode;
    // Ollama streams unless the request says "stream": false. A byte search, not a JSON parse.
    return body !== null && STREAM_FALSE.test(body.toString('latin1')) ? 'json' : 'ndjson';
  }
  if (method !== 'GET' && method !== 'HEAD') return 'notFound';
  switch (path) {
    case '/': return 'root';
    case '/api/version': return 'version';
    case '/api/tags': return 'tags';
    case '/api/ps': return 'ps';
    default: return 'notFound';
  }
}
const STREAM_FALSE = /"stream"\s*:\s*false/;

// ---------------------------------------------------------------------------------------------
// Raw responder: whole responses (status line, headers, body) precomputed as one Buffer per answer
// and per keep-alive/close variant, re-rendered once a second so the Date header stays true.
let wire = {};
function renderWire() {
  const date = new Date().toUTCString();
  const out = {};
  for (const [name, a] of Object.entries(ANSWERS)) {
    for (const close of [false, true]) {
      let head = `HTTP/1.1 ${a.status} ${REASONS[a.status]}\r\nContent-Type: ${a.type}\r\nDate: ${date}\r\n`;
      if (close) head += 'Connection: close\r\n';
      let payload;
      if (a.body) {
        head += `Content-Length: ${a.body.length}\r\n\r\n`;
        payload = a.body;
      } else {
        head += 'Transfer-Encoding: chunked\r\n\r\n';
        payload = Buffer.concat([
          ...a.chunks.map((c) => Buffer.concat([Buffer.from(c.length.toString(16) + '\r\n'), c, Buffer.from('\r\n')])),
          Buffer.from('0\r\n\r\n'),
        ]);
      }
      const headBuf = Buffer.from(head, 'latin1');
      out[name + (close ? ':close' : '')] = { full: Buffer.concat([headBuf, payload]), head: headBuf };
    }
  }
  wire = out;
}

const CRLFCRLF = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 * 1024;
const MAX_BODY = 16 * 1024 * 1024;

/** One connection: a small state machine over the incoming bytes. */
function serveSocket(socket) {
  socket.setNoDelay(true);
  let buf = null; // unconsumed bytes
  let state = 'head'; // 'head' | 'body' (Content-Length) | 'chunk-size' | 'chunk-data' | 'trailers'
  let remaining = 0; // bytes left in the current body / chunk (+2 for a chunk's CRLF)
  let req = null; // { method, path, close, bodyParts }
  let done = false; // after a `Connection: close` answer or a bad request: ignore further bytes

  const fail = (status) => {
    socket.end(`HTTP/1.1 ${status} Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    done = true;
  };

  const finish = () => {
    const body = req.bodyParts.length === 0 ? null : req.bodyParts.length === 1 ? req.bodyParts[0] : Buffer.concat(req.bodyParts);
    const name = route(req.method, req.path, body);
    const w = wire[name + (req.close ? ':close' : '')];
    if (req.method === 'HEAD') socket.write(w.head);
    else socket.write(w.full);
    if (req.close) {
      socket.end();
      done = true;
    }
    const wasClose = req.close;
    req = null;
    state = 'head';
    return !wasClose;
  };

  socket.on('data', (chunk) => {
    if (done) return;
    buf = buf === null || buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
    for (;;) {
      if (state === 'head') {
        const end = buf.indexOf(CRLFCRLF);
        if (end === -1) {
          if (buf.length > MAX_HEAD) fail(431);
          return;
        }
        const head = buf.toString('latin1', 0, end);
        buf = buf.subarray(end + 4);
        const lineEnd = head.indexOf('\r\n');
        const line = lineEnd === -1 ? head : head.slice(0, lineEnd);
        const sp1 = line.indexOf(' ');
        const sp2 = line.indexOf(' ', sp1 + 1);
        if (sp1 === -1 || sp2 === -1) return fail(400);
        const method = line.slice(0, sp1);
        const path = line.slice(sp1 + 1, sp2);
        const http10 = line.endsWith('HTTP/1.0');
        let contentLength = 0;
        let chunked = false;
        let close = http10;
        if (lineEnd !== -1) {
          // Only three headers matter; scan lines without building a header map.
          const lower = head.slice(lineEnd + 2).toLowerCase();
          for (const h of lower.split('\r\n')) {
            const colon = h.indexOf(':');
            if (colon === -1) continue;
            const name = h.slice(0, colon).trim();
            if (name === 'content-length') contentLength = Number(h.slice(colon + 1).trim());
            else if (name === 'transfer-encoding') chunked = h.includes('chunked');
            else if (name === 'connection') {
              const v = h.slice(colon + 1);
              if (v.includes('close')) close = true;
              else if (v.includes('keep-alive')) close = false;
            }
          }
        }
        if (!Number.isSafeInteger(contentLength) || contentLength < 0 || contentLength > MAX_BODY) return fail(400);
        req = { method, path, close, bodyParts: [] };
        if (chunked) state = 'chunk-size';
        else if (contentLength > 0) {
          state = 'body';
          remaining = contentLength;
        } else if (!finish()) return;
        continue;
      }
      if (state === 'body') {
        if (buf.length === 0) return;
        const take = Math.min(remaining, buf.length);
        req.bodyParts.push(buf.subarray(0, take));
        buf = buf.subarray(take);
        remaining -= take;
        if (remaining > 0) return;
        if (!finish()) return;
        continue;
      }
      if (state === 'chunk-size') {
        const eol = buf.indexOf('\r\n');
        if (eol === -1) {
          if (buf.length > 1024) fail(400);
          return;
        }
        const size = parseInt(buf.toString('latin1', 0, eol), 16); // ignores ;extensions
        buf = buf.subarray(eol + 2);
        if (!Number.isSafeInteger(size) || size < 0) return fail(400);
        if (size === 0) state = 'trailers';
        else {
          state = 'chunk-data';
          remaining = size + 2;
        }
        continue;
      }
      if (state === 'chunk-data') {
        if (buf.length === 0) return;
        const take = Math.min(remaining, buf.length);
        // The last two bytes of `remaining` are the chunk's CRLF, not data.
        const dataTake = Math.min(take, Math.max(0, remaining - 2));
        if (dataTake > 0) req.bodyParts.push(buf.subarray(0, dataTake));
        buf = buf.subarray(take);
        remaining -= take;
        if (remaining > 0) return;
        state = 'chunk-size';
        continue;
      }
      if (state === 'trailers') {
        // Trailer section: header lines ending with an empty line (usually just CRLF).
        if (buf.length >= 2 && buf[0] === 13 && buf[1] === 10) {
          buf = buf.subarray(2);
          if (!finish()) return;
          continue;
        }
        const end = buf.indexOf(CRLFCRLF);
        if (end === -1) return;
        buf = buf.subarray(end + 4);
        if (!finish()) return;
        continue;
      }
    }
  });
  socket.on('error', () => {}); // peers reset connections at the end of a wrk run
}

// ---------------------------------------------------------------------------------------------
// node:http variant (cross-check): same bodies, Node's parser and header writer.
function httpHandler(req, res) {
  const parts = [];
  req.on('data', (c) => parts.push(c));
  req.on('end', () => {
    const name = route(req.method, req.url, parts.length ? Buffer.concat(parts) : null);
    const a = ANSWERS[name];
    if (a.body) {
      res.writeHead(a.status, { 'Content-Type': a.type, 'Content-Length': a.body.length });
      res.end(req.method === 'HEAD' ? undefined : a.body);
    } else {
      res.writeHead(a.status, { 'Content-Type': a.type });
      for (const c of a.chunks) res.write(c);
      res.end();
    }
  });
}

// ---------------------------------------------------------------------------------------------
let server;
if (opts.impl === 'net') {
  renderWire();
  setInterval(renderWire, 1000).unref();
  server = net.createServer({ noDelay: true }, serveSocket);
} else {
  server = http.createServer({ keepAliveTimeout: 60_000 }, httpHandler);
}
server.listen(Number(opts.port), opts.host, () => {
  const { address, port } = server.address();
  process.stdout.write(`listening http://${address}:${port} impl=${opts.impl} mode=${opts.mode} pid=${process.pid}\n`);
});
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
