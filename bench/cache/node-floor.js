// The floor for corral's hit path (bench/README.md): a bare node:http server that reads and
// JSON.parses the request body, then answers the same bytes a cached /api/embed hit is (taken
// from the upstream once at start), with the same headers. Nothing else: no routing, no key,
// no lookup. Usage: node node-floor.js --port P --upstream http://127.0.0.1:UP
import http from 'node:http'

const arg = (name) => process.argv[process.argv.indexOf(`--${name}`) + 1]
const res0 = await fetch(`${arg('upstream')}/api/embed`, {
  method: 'POST',
  body: JSON.stringify({ model: 'nomic-embed-text', input: 'what does corral cache?' }),
})
const answer = Buffer.from(await res0.arrayBuffer())

http
  .createServer({ noDelay: true }, (req, res) => {
    const chunks = []
    req.on('data', (c) => chunks.push(c))
    req.on('end', () => {
      JSON.parse(Buffer.concat(chunks).toString('utf8'))
      res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': answer.length, 'x-request-id': 'floor', 'x-corral-cache': 'hit' })
      res.end(answer)
    })
  })
  .listen(Number(arg('port')), '127.0.0.1', () => console.log('listening'))
