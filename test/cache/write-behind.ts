/** The write-behind queue: bounded in bytes, runs jobs in order in slices, drains and drops. */
import t from 'tap'
import { WriteBehind, type BackgroundJob } from '../../src/cache/write-behind.js'
import { waitFor } from '../fixtures/wait-for.js'

/** A job of `steps` pieces of work; each `run` does one piece and stops at the deadline. */
function job(bytes: number, steps: number, log: string[], name: string): BackgroundJob & { dropped: boolean; done: boolean } {
  let left = steps
  const j = {
    bytes,
    dropped: false,
    done: false,
    run(deadline: number): boolean {
      do {
        log.push(name)
        left--
      } while (left > 0 && performance.now() < deadline)
      j.done = left === 0
      return j.done
    },
    drop(): void {
      j.dropped = true
    },
  }
  return j
}

t.test('jobs that do not fit are refused; an empty queue takes one whatever its size', async (t) => {
  const queue = new WriteBehind({ maxQueuedBytes: 100 })
  t.teardown(() => queue.close())
  const log: string[] = []
  t.ok(queue.add(job(500, 1, log, 'big')), 'an empty queue takes a job larger than its bound')
  t.notOk(queue.add(job(1, 1, log, 'small')), 'behind it, nothing fits')
  queue.drain()
  t.same(log, ['big'])
  t.ok(queue.add(job(60, 1, log, 'a')))
  t.ok(queue.add(job(40, 1, log, 'b')))
  t.notOk(queue.add(job(1, 1, log, 'c')), '100 bytes queued: full')
  t.equal(queue.queuedBytes, 100)
  queue.drain()
  t.equal(queue.queuedBytes, 0)
  t.same(log, ['big', 'a', 'b'], 'in order')
})

t.test('jobs run on their own, in order, a piece at a time between turns of the loop', async (t) => {
  const queue = new WriteBehind({ maxQueuedBytes: 1000, sliceMs: 0 })
  t.teardown(() => queue.close())
  const log: string[] = []
  const first = job(1, 3, log, 'first')
  const second = job(1, 2, log, 'second')
  queue.add(first)
  queue.add(second)
  t.same(log, [], 'nothing runs on the caller\'s turn')
  await waitFor('both jobs done', () => second.done)
  t.same(log, ['first', 'first', 'first', 'second', 'second'], 'one piece per slice of zero ms, in order')
  t.equal(queue.size, 0)
})

t.test('close drops what is queued and refuses more', async (t) => {
  const queue = new WriteBehind({ maxQueuedBytes: 1000 })
  const log: string[] = []
  const waiting = job(1, 1, log, 'waiting')
  queue.add(waiting)
  queue.close()
  t.ok(waiting.dropped, 'the queued job let go of what it held')
  t.notOk(queue.add(job(1, 1, log, 'late')))
  queue.drain()
  t.same(log, [])
})
