/** Stored generations: what is kept, and how it renders in either shape (pure, no network). */
import t from 'tap'
import { AnswerRecord } from '../../src/cache/answer-record.js'

const line = (o: object): string => JSON.stringify(o) + '\n'
const at = '2026-01-01T00:00:00Z'

t.test('a streamed chat with thinking and tool calls merges into the one-object answer', async (t) => {
  const stream =
    line({ model: 'm', created_at: at, message: { role: 'assistant', content: '', thinking: 'Let me ' }, done: false }) +
    line({ model: 'm', created_at: at, message: { role: 'assistant', content: '', thinking: 'think.' }, done: false }) +
    line({ model: 'm', created_at: at, message: { role: 'assistant', content: 'Hello', tool_calls: [{ function: { name: 'f', arguments: {} } }] }, done: false }) +
    line({ model: 'm', created_at: at, message: { role: 'assistant', content: ' world' }, done: false }) +
    line({ model: 'm', created_at: at, message: { role: 'assistant', content: '' }, done: true, done_reason: 'stop', total_duration: 5, eval_count: 4 })
  const record = AnswerRecord.fromAnswer('chat', stream, true)!
  t.ok(record)
  const whole = JSON.parse(record.whole('"mine"', 'now')) as Record<string, unknown>
  t.same(whole, {
    model: 'mine',
    created_at: 'now',
    message: { role: 'assistant', content: 'Hello world', thinking: 'Let me think.', tool_calls: [{ function: { name: 'f', arguments: {} } }] },
    done: true,
    done_reason: 'stop',
    total_duration: 5,
    eval_count: 4,
  })
  const replayed = record.stream('"mine"', 'now').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  t.same(replayed.map((l) => l.message), stream.trim().split('\n').map((l) => (JSON.parse(l) as Record<string, unknown>).message), 'the same chunks again')
  t.same(Object.keys(replayed[0]!), ['model', 'created_at', 'message', 'done'], "Ollama's field order")
  t.same(AnswerRecord.decode(record.encode())?.whole('"mine"', 'now'), record.whole('"mine"', 'now'), 'survives encoding')
})

t.test('a one-object generate answer streams as one content chunk and the final chunk', async (t) => {
  const obj = { model: 'm', created_at: at, response: 'Hi there', thinking: 'hmm', done: true, done_reason: 'length', context: [1, 2], eval_count: 2 }
  const record = AnswerRecord.fromAnswer('generate', JSON.stringify(obj), false)!
  const lines = record.stream('"m"', at).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>)
  t.same(lines, [
    { model: 'm', created_at: at, response: 'Hi there', thinking: 'hmm', done: false },
    { model: 'm', created_at: at, response: '', done: true, done_reason: 'length', context: [1, 2], eval_count: 2 },
  ])
  t.same(JSON.parse(record.whole('"m"', at)), obj, 'and back to the same object')
})

t.test('what is never stored', async (t) => {
  const final = { model: 'm', created_at: at, response: '', done: true, done_reason: 'stop' }
  t.equal(AnswerRecord.fromAnswer('generate', line({ ...final, done_reason: 'load' }), true), undefined, 'a load')
  t.equal(AnswerRecord.fromAnswer('generate', line({ ...final, done_reason: 'unload' }), false), undefined, 'an unload')
  t.equal(AnswerRecord.fromAnswer('generate', line({ model: 'm', response: 'a', done: false }), true), undefined, 'no final chunk')
  t.equal(AnswerRecord.fromAnswer('generate', line({ model: 'm', response: 'a', done: false }) + line({ error: 'boom' }), true), undefined, 'an error line')
  t.equal(AnswerRecord.fromAnswer('generate', line(final) + line(final), true), undefined, 'anything after the final chunk')
  t.equal(AnswerRecord.fromAnswer('generate', '{"model":"m","respo', true), undefined, 'a cut line')
  t.ok(AnswerRecord.fromAnswer('generate', line(final), true), 'a complete one is')
})
