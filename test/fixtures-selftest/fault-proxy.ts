/**
 * The fault proxy itself (test/fixtures/fault-proxy.ts), against a plain TCP echo server: each
 * fault does what it says, counters are right, and nothing stays open.
 */
import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { setTimeout as delay } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { startFaultProxy, type FaultProxy } from '../fixtures/fault-proxy.js'

interface Echo {
  server: Server
  port: number
  /** Bytes the echo server received. */
  received: () => number
}

async function startEcho(t: Test): Promise<Echo> {
  let received = 0
  const sockets = new Set<Socket>()
  const server = createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => undefined)
    socket.on('data', (d: Buffer) => {
      received += d.length
      socket.write(d)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(async () => {
    for (const s of sockets) s.destroy()
    await new Promise((resolve) => server.close(resolve))
  })
  return { server, port: (server.address() as AddressInfo).port, received: () => received }
}

async function setup(t: Test): Promise<{ echo: Echo; proxy: FaultProxy }> {
  const echo = await startEcho(t)
  const proxy = await startFaultProxy(echo.port)
  t.teardown(() => proxy.close())
  return { echo, proxy }
}

/** A client socket that collects what it receives and how it ended. */
async function dial(port: number): Promise<{ socket: Socket; data: () => Buffer; ended: Promise<string> }> {
  const socket = connect(port, '127.0.0.1')
  const chunks: Buffer[] = []
  socket.on('data', (d: Buffer) => chunks.push(d))
  const ended = new Promise<string>((resolve) => {
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'))
    socket.on('end', () => resolve('end'))
  })
  await once(socket, 'connect')
  return { socket, data: () => Buffer.concat(chunks), ended }
}

/** Resolves once `client` has received `n` bytes. */
async function receive(client: { socket: Socket; data: () => Buffer }, n: number): Promise<Buffer> {
  while (client.data().length < n) await once(client.socket, 'data')
  return client.data()
}

t.test('pass: bytes go both ways, counted; open connections return to zero', async (t) => {
  const { proxy } = await setup(t)
  const client = await dial(proxy.port)
  client.socket.write('hello')
  t.equal((await receive(client, 5)).toString(), 'hello')
  t.match(proxy.stats(), { open: 1, total: 1, bytesUp: 5, bytesDown: 5 })
  client.socket.end()
  await proxy.until((s) => s.open === 0)
  t.equal(proxy.open, 0)
})

t.test('latency delays every chunk', async (t) => {
  const { proxy } = await setup(t)
  await proxy.set({ latencyMs: 150 })
  const client = await dial(proxy.port)
  const started = performance.now()
  client.socket.write('x')
  await receive(client, 1)
  // Once up, once down: a lower bound only, which load on the machine cannot break.
  t.ok(performance.now() - started >= 290, 'at least twice the latency for a round trip')
  client.socket.destroy()
})

t.test('bytesPerSec throttles each direction', async (t) => {
  const { proxy } = await setup(t)
  await proxy.set({ bytesPerSec: 20_000 })
  const client = await dial(proxy.port)
  const started = performance.now()
  client.socket.write(Buffer.alloc(10_000, 1))
  await receive(client, 10_000)
  // The echo overlaps both directions: 10 kB at 20 kB/s is at least half a second end to end.
  t.ok(performance.now() - started >= 450, '10 kB at 20 kB/s take at least half a second')
  client.socket.destroy()
})

t.test('closeAfterBytes ends the connection after exactly that many bytes from the target', async (t) => {
  const { proxy } = await setup(t)
  await proxy.set({ closeAfterBytes: 7 })
  const client = await dial(proxy.port)
  client.socket.write('0123456789')
  t.equal(await client.ended, 'end', 'a clean FIN')
  t.equal(client.data().toString(), '0123456')
  t.equal(proxy.stats().cuts, 1)
  await proxy.until((s) => s.open === 0)
})

t.test('reset: open connections and new ones get a TCP reset', async (t) => {
  const { proxy } = await setup(t)
  const open = await dial(proxy.port)
  open.socket.write('a')
  await receive(open, 1)
  await proxy.set({ mode: 'reset' })
  t.equal(await open.ended, 'ECONNRESET')
  const fresh = connect(proxy.port, '127.0.0.1')
  const [err] = (await once(fresh, 'error')) as [NodeJS.ErrnoException]
  t.equal(err.code, 'ECONNRESET', 'accepted, then reset')
  t.equal(proxy.stats().resets, 2)
  t.equal(proxy.open, 0)
  await proxy.heal()
  const again = await dial(proxy.port)
  again.socket.write('b')
  t.equal((await receive(again, 1)).toString(), 'b', 'pass again')
  again.socket.destroy()
})

t.test('blackhole: accepted, nothing forwarded until the mode changes, then held bytes flow on', async (t) => {
  const { echo, proxy } = await setup(t)
  await proxy.set({ mode: 'blackhole' })
  const client = await dial(proxy.port)
  client.socket.write('held')
  // Absence can only be observed over a window: 300 ms in which nothing may arrive.
  await delay(300)
  t.equal(echo.received(), 0, 'the target got nothing')
  t.equal(client.data().length, 0, 'the client got nothing')
  t.equal(proxy.open, 1, 'the connection is held open')
  await proxy.heal()
  t.equal((await receive(client, 4)).toString(), 'held')
  client.socket.destroy()
})

t.test('refuse: stops listening and resets open connections; pass listens again on the same port', async (t) => {
  const { proxy } = await setup(t)
  const port = proxy.port
  const open = await dial(port)
  await proxy.set({ mode: 'refuse' })
  t.equal(await open.ended, 'ECONNRESET')
  const refused = connect(port, '127.0.0.1')
  const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException]
  t.equal(err.code, 'ECONNREFUSED')
  await proxy.set({ mode: 'pass' })
  t.equal(proxy.port, port)
  const again = await dial(port)
  again.socket.write('c')
  t.equal((await receive(again, 1)).toString(), 'c')
  again.socket.destroy()
})

t.test('close() destroys every connection, pending timers included', async (t) => {
  const { proxy } = await setup(t)
  await proxy.set({ latencyMs: 60_000 })
  const client = await dial(proxy.port)
  client.socket.write('never')
  await proxy.close()
  t.match(await client.ended, /^(end|ECONNRESET)$/, 'the client sees its connection closed')
  t.equal(proxy.open, 0)
  await proxy.close()
})
