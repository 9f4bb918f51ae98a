/** Merging progress streams: pure logic with an injected clock, no network and no sleeps. */
import t from 'tap'
import { ProgressMerge } from '../../src/proxy/progress-merge.js'

function merger(instances: number): { merge: ProgressMerge; lines: Record<string, unknown>[]; clock: { now: number } } {
  const lines: Record<string, unknown>[] = []
  const clock = { now: 0 }
  const merge = new ProgressMerge({
    instances,
    write: (line) => {
      t.ok(line.endsWith('\n'), 'one line each')
      lines.push(JSON.parse(line) as Record<string, unknown>)
    },
    now: () => clock.now,
    intervalMs: 100,
  })
  return { merge, lines, clock }
}

t.test('status lines without a digest are written once, the first time any instance reports them', async (t) => {
  const { merge, lines } = merger(2)
  merge.add(0, { status: 'pulling manifest' })
  merge.add(1, { status: 'pulling manifest' })
  merge.add(1, { status: 'verifying sha256 digest' })
  merge.add(0, { status: 'verifying sha256 digest' })
  t.same(lines, [{ status: 'pulling manifest' }, { status: 'verifying sha256 digest' }])
})

t.test('layer progress is summed over instances against one total from the first report, omitting completed while it is 0', async (t) => {
  const { merge, lines, clock } = merger(3)
  const d = 'sha256:aaa'
  merge.add(0, { status: 'pulling aaa', digest: d, total: 100 })
  t.same(lines.at(-1), { status: 'pulling aaa', digest: d, total: 300 }, 'first report written at once, the total for all three')
  clock.now = 200
  merge.add(1, { status: 'pulling aaa', digest: d, total: 100, completed: 40 })
  t.same(lines.at(-1), { status: 'pulling aaa', digest: d, total: 300, completed: 40 })
  clock.now = 400
  merge.add(2, { status: 'pulling aaa', digest: d, total: 100, completed: 10 })
  t.same(lines.at(-1), { status: 'pulling aaa', digest: d, total: 300, completed: 50 })
})

t.test('the percentage a client computes never goes back', async (t) => {
  const { merge, lines, clock } = merger(2)
  const d = 'sha256:ddd'
  // As ollama-js saw it through corral over two instances: 500/1000, then 1500/2000, 2000/2000.
  const steps: [number, number][] = [[0, 500], [1, 0], [1, 400], [0, 800], [0, 300], [1, 1000], [0, 1000]]
  for (const [i, completed] of steps) {
    clock.now += 200
    merge.add(i, { status: 'pulling ddd', digest: d, total: 1000, completed })
  }
  const percents = lines.map((l) => Number(l.completed ?? 0) / Number(l.total))
  t.same(new Set(lines.map((l) => l.total)), new Set([2000]), 'one total throughout')
  for (let i = 1; i < percents.length; i++) t.ok(percents[i]! >= percents[i - 1]!, `step ${i}: ${percents[i - 1]} -> ${percents[i]}`)
  t.equal(percents.at(-1), 1)
})

t.test('at most one line per layer per interval; an instance finishing a layer and flush always write', async (t) => {
  const { merge, lines, clock } = merger(2)
  const d = 'sha256:bbb'
  merge.add(0, { status: 'pulling bbb', digest: d, total: 100, completed: 10 })
  clock.now = 10
  merge.add(0, { status: 'pulling bbb', digest: d, total: 100, completed: 20 })
  merge.add(1, { status: 'pulling bbb', digest: d, total: 100, completed: 30 })
  t.equal(lines.length, 1, 'held back within the interval')
  clock.now = 20
  merge.add(0, { status: 'pulling bbb', digest: d, total: 100, completed: 100 })
  t.same(lines.at(-1), { status: 'pulling bbb', digest: d, total: 200, completed: 130 }, 'a finished layer is written at once')
  clock.now = 30
  merge.add(1, { status: 'pulling bbb', digest: d, total: 100, completed: 60 })
  t.equal(lines.length, 2)
  merge.flush()
  t.same(lines.at(-1), { status: 'pulling bbb', digest: d, total: 200, completed: 160 }, 'flush writes the held-back state')
  merge.flush()
  t.equal(lines.length, 3, 'and only once')
})

t.test('a new status line first writes the held-back layer states, so order is kept', async (t) => {
  const { merge, lines, clock } = merger(2)
  const d = 'sha256:ccc'
  merge.add(0, { status: 'pulling ccc', digest: d, total: 10 })
  clock.now = 1
  merge.add(1, { status: 'pulling ccc', digest: d, total: 10, completed: 5 })
  merge.add(1, { status: 'verifying sha256 digest' })
  t.same(lines, [
    { status: 'pulling ccc', digest: d, total: 20 },
    { status: 'pulling ccc', digest: d, total: 20, completed: 5 },
    { status: 'verifying sha256 digest' },
  ])
})
