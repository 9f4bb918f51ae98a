#!/usr/bin/env node
// The least a Node proxy built like corral (node:http server, undici Pool to the instance) does
// per request: read the body, JSON.parse it (corral must, for routing and cache keys), dispatch
// it, relay the answer. No balancing, cache, ids, logging or failover. An optional target of
// bench/overhead/run.sh (TARGETS="direct nginx floor corral"): it shows how much of corral's
// distance to nginx is the stack and how much is corral.
//
// Usage: node bench/overhead/node-floor.js --port PORT --upstream http://127.0.0.1:UPPORT
import http from 'node:http';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

const require = createRequire(new URL('../../package.json', import.meta.url));
const { Pool } = require('undici');

const { values: opts } = parseArgs({
  options: { port: { type: 'string', default: '0' }, upstream: { type: 'string' } },
});
if (!opts.upstream) throw new Error('--upstream is required');
const pool = new Pool(opts.upstream, { connections: 64, keepAliveTimeout: 30_000 });
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);

/** undici's own (legacy) handler shape: no wrapper objects, raw header list straight to writeHead. */
function relay(res) {
  return {
    onConnect() {},
    onHeaders(status, raw) {
      const out = [];
      for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i].toString('latin1');
        if (!HOP.has(name.toLowerCase())) out.push(name, raw[i + 1].toString('latin1'));
      }
      res.writeHead(status, out);
      return true;
    },
    onData: (chunk) => res.write(chunk),
    onComplete: () => res.end(),
    onError: (err) => {
      if (res.headersSent) res.destroy(err);
      else res.writeHead(502, { 'content-type': 'application/json' }).end(JSON.stringify({ error: err.message }));
    },
  };
}

const server = http.createServer({ noDelay: true, keepAliveTimeout: 60_000 }, (req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
    try {
      if (body.length > 0) JSON.parse(body.toString('utf8'));
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid JSON"}');
      return;
    }
    const headers = { 'content-type': req.headers['content-type'] ?? 'application/json' };
    pool.dispatch({ method: req.method, path: req.url, headers, body: body.length > 0 ? body : null }, relay(res));
  });
});
server.listen(Number(opts.port), '127.0.0.1', () => {
  process.stdout.write(`listening http://127.0.0.1:${server.address().port} pid=${process.pid}\n`);
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
