/**
 * A lingering close: a client still uploading when corral answers 413 (or 401) reads the answer
 * and finishes sending without EPIPE or a reset; corral reads and discards the rest of the body,
 * then closes the connection cleanly (FIN).
 */
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { request } from 'undici'
import { Readable } from 'node:stream'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { startCorral } from '../fixtures/start-corral.js'

const CHUNK = Buffer.alloc(64 * 1024, 0x61)
/** The body a client sends: far over the 1 KiB limit, well under the lingering bound. */
const TOTAL = 32 * 1024 * 1024

interface Upload {
  /** The response head and body as received. */
  answer: string
  /** Every byte of the body was written without an error. */
  sentAll: boolean
  /** The socket error the client saw, if any (EPIPE, ECONNRESET). */
  error: string | undefined
  /** The server ended the connection with a FIN (not a reset). */
  ended: boolean
}

/**
 * Sends headers and the first chunk, waits for the whole answer, then sends the rest of the
 * body: the write after the answer is where an early close shows (EPIPE or ECONNRESET).
 */
async function uploadPastAnswer(base: string, path: string, headers: string): Promise<Upload> {
  const { hostname, port } = new URL(base)
  const socket: Socket = connect(Number(port), hostname)
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve)
    socket.once('error', reject)
  })
  let answer = ''
  let error: string | undefined
  let ended = false
  socket.on('data', (d: Buffer) => (answer += d.toString('latin1')))
  socket.on('error', (err: NodeJS.ErrnoException) => (error ??= err.code ?? err.message))
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  socket.once('end', () => (ended = true))
  socket.write(`POST ${path} HTTP/1.1\r\nHost: corral\r\nContent-Type: application/json\r\nContent-Length: ${TOTAL}\r\n${headers}\r\n`)
  socket.write(CHUNK)
  // The answer (head and its Content-Length of body) arrives while the upload is under way.
  await new Promise<void>((resolve, reject) => {
    const check = (): void => {
      const head = answer.indexOf('\r\n\r\n')
      const length = /content-length: (\d+)/i.exec(answer)
      if (head !== -1 && length !== null && answer.length >= head + 4 + Number(length[1])) {
        socket.off('data', check)
        resolve()
      }
    }
    socket.on('data', check)
    void closed.then(() => reject(new Error(`closed before the answer: ${JSON.stringify(answer)} ${error ?? ''}`)))
  })
  let sent = CHUNK.length
  while (sent < TOTAL && error === undefined && !socket.destroyed) {
    const ok = socket.write(CHUNK)
    sent += CHUNK.length
    if (!ok) await new Promise((resolve) => (socket.once('drain', resolve), socket.once('close', resolve)))
  }
  // Wait until everything written has been handed to the kernel (or failed).
  await new Promise<void>((resolve) => socket.end(() => resolve()))
  await closed
  return { answer, sentAll: sent >= TOTAL && error === undefined, error, ended }
}

t.test('413 mid-upload: the client reads it, finishes sending, and the connection closes cleanly', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], { limits: { max_body_size: { embedding: '1KiB' } } })
  for (let run = 0; run < 4; run++) {
    const upload = await uploadPastAnswer(url, '/api/embed', '')
    t.match(upload.answer, /^HTTP\/1\.1 413 /, `run ${run}: the 413 was read`)
    t.match(upload.answer, /connection: close/i)
    t.match(upload.answer, /\{"error":"request body is larger than the limit of 1024 bytes"\}$/)
    t.equal(upload.error, undefined, `run ${run}: no EPIPE or reset`)
    t.ok(upload.sentAll, `run ${run}: the whole body was sent`)
    t.ok(upload.ended, `run ${run}: closed with a FIN`)
  }
  t.equal(fake.count('/api/embed'), 0)

  // And through an HTTP client streaming a body it cannot stop: the 413, not EPIPE.
  const body = Readable.from((function* () {
    for (let sent = 0; sent < TOTAL; sent += CHUNK.length) yield CHUNK
  })())
  const res = await request(`${url}/api/embed`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })
  t.equal(res.statusCode, 413)
  t.same(await res.body.json(), { error: 'request body is larger than the limit of 1024 bytes' })
})

t.test('a 401 on an upload lingers too', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url } = await startCorral(t, [fake.url], { auth: { enabled: true, keys: [{ name: 'a', key: 'a-key-0123456789abcdef' }] } })
  const upload = await uploadPastAnswer(url, '/api/embed', '')
  t.match(upload.answer, /^HTTP\/1\.1 401 /)
  t.equal(upload.error, undefined, 'no EPIPE or reset')
  t.ok(upload.sentAll)
  t.ok(upload.ended)
})
