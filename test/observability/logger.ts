/**
 * Logs: one JSON line per request with the facts an operator needs (tokens included), never a
 * prompt, a body or a key; human-readable lines on a terminal.
 */
import { Writable } from 'node:stream'
import t from 'tap'
import { createLogger, flushLogger } from '../../src/observability/logger.js'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { startCorral } from '../fixtures/start-corral.js'
import { send } from '../fixtures/http.js'

function capture(): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = []
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(Buffer.from(chunk))
      done()
    },
  })
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') }
}

t.test('the request line carries tokens; prompts and keys never reach the log', async (t) => {
  const fake = await startFakeOllama()
  t.teardown(() => fake.close())
  const { url, logs, corral } = await startCorral(t, [fake.url])
  const prompt = 'SECRET-PROMPT-4711 what is in the handbook?'
  const res = await send(url, 'POST', '/api/generate', { model: 'llama3.2', prompt, stream: false }, { authorization: 'Bearer sk-KEY-0815' })
  t.equal(res.status, 200)
  const answer = res.json as { eval_count: number; prompt_eval_count: number }
  await corral.proxy.whenIdle()
  const line = logs.find((l) => l.msg === 'request' && l.route === 'generate')
  t.match(line, {
    req: String, method: 'POST', path: '/api/generate', route: 'generate', model: 'llama3.2', status: 200,
    instance: 'i0', attempts: 1, cache: String, ms: Number, tokens: answer.eval_count, prompt_tokens: answer.prompt_eval_count,
  })
  const all = JSON.stringify(logs)
  t.notMatch(all, /SECRET-PROMPT-4711/, 'no prompt in the log')
  t.notMatch(all, /sk-KEY-0815/, 'no key in the log')
})

t.test('Authorization is redacted wherever a line would carry it', async (t) => {
  const out = capture()
  const logger = createLogger('info', out.stream, { pretty: false })
  logger.info({ headers: { authorization: 'Bearer sk-1', 'x-request-id': 'abc' } }, 'headers')
  logger.info({ authorization: 'Bearer sk-2' }, 'flat')
  await flushLogger(logger)
  const text = out.text()
  t.notMatch(text, /sk-1|sk-2/)
  t.match(text, /\[redacted\]/)
  t.match(text, /"x-request-id":"abc"/, 'other headers are kept')
})

t.test('on a terminal the lines are human-readable', async (t) => {
  const out = capture()
  const logger = createLogger('info', out.stream, { pretty: true })
  logger.info({ instance: 'gpu-1', from: 'healthy', to: 'ejected' }, 'instance ejected')
  await flushLogger(logger)
  await new Promise((resolve) => setImmediate(resolve))
  const text = out.text()
  t.match(text, /INFO.*instance ejected/)
  t.match(text, /instance: "gpu-1"/)
  t.throws(() => JSON.parse(text.split('\n')[0]!) as unknown, 'not JSON')
})
