// Redis bytes per cached answer, for the README's Redis sizing ("Running at scale"): encodes a
// 300-token generation (generate with a 400-token `context`, and chat; streamed and one-object)
// as corral stores it (AnswerRecord), SETs it in a Redis and prints STRLEN and MEMORY USAGE.
// Needs `npm run build`. Usage: node bench/cache/answer-bytes.js redis://127.0.0.1:PORT
// (a scratch Redis: it writes one key, bench:answer-bytes, and deletes it).
import { Redis } from 'ioredis'
import { AnswerRecord } from '../../dist/cache/answer-record.js'

const redis = new Redis(process.argv[2] ?? 'redis://127.0.0.1:6379')
const words = 'the of and to in is that for it as was with be by on not he this are or'.split(' ')
const tokens = Array.from({ length: 300 }, (_, i) => (i ? ' ' : '') + words[(i * 7) % words.length])
const created_at = '2026-11-30T10:00:00.000000000Z'
const model = 'llama3.2'
const counts = { total_duration: 5123456789, load_duration: 12345678, prompt_eval_count: 100, prompt_eval_duration: 123456789, eval_count: 300, eval_duration: 4987654321 }
const context = Array.from({ length: 400 }, (_, i) => 1000 + ((i * 7919) % 120000))
const lines = (piece, final) => [...tokens.map((t) => JSON.stringify({ model, created_at, ...piece(t), done: false })), JSON.stringify({ model, created_at, ...final })].join('\n')
const cases = [
  ['generate, streamed', 'generate', true, lines((t) => ({ response: t }), { response: '', done: true, done_reason: 'stop', context, ...counts })],
  ['generate, one object', 'generate', false, JSON.stringify({ model, created_at, response: tokens.join(''), done: true, done_reason: 'stop', context, ...counts })],
  ['chat, streamed', 'chat', true, lines((t) => ({ message: { role: 'assistant', content: t } }), { message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop', ...counts })],
  ['chat, one object', 'chat', false, JSON.stringify({ model, created_at, message: { role: 'assistant', content: tokens.join('') }, done: true, done_reason: 'stop', ...counts })],
]
const key = 'bench:answer-bytes'
for (const [name, shape, streamed, body] of cases) {
  const value = AnswerRecord.fromAnswer(shape, body, streamed).encode()
  await redis.set(key, value)
  console.log(`${name}: Ollama's answer ${body.length} B, stored value ${value.length} B, MEMORY USAGE ${await redis.memory('USAGE', key)} B`)
}
await redis.del(key)
redis.disconnect()
