/** The in-memory limiter's decisions, with time injected: fixed minute windows and slots. */
import t from 'tap'
import { MemoryLimiter } from '../../src/auth/memory-limiter.js'
import { UNLIMITED, type Admission } from '../../src/auth/limiter.js'

const minute = Date.UTC(2026, 0, 1, 0, 0, 0)
const granted = (a: Admission): boolean => a.ok

t.test('requests per minute: fixed windows, Retry-After until the window ends', async (t) => {
  const limiter = new MemoryLimiter()
  const limits = { rpm: 2, maxConcurrency: 0 }
  const first = limiter.acquire('k', limits, minute + 1_000)
  t.ok(first.ok)
  if (first.ok) first.release()
  t.ok(granted(limiter.acquire('k', limits, minute + 2_000)))
  t.same(limiter.acquire('k', limits, minute + 20_500), { ok: false, limit: 'rpm', retryAfterSeconds: 40 })
  t.same(limiter.acquire('k', limits, minute + 59_999), { ok: false, limit: 'rpm', retryAfterSeconds: 1 }, 'at least 1 s')
  t.ok(granted(limiter.acquire('other', limits, minute + 30_000)), 'per key name')
  t.ok(granted(limiter.acquire('k', limits, minute + 60_000)), 'a new window')
})

t.test('concurrency: slots are held until released; release is idempotent', async (t) => {
  const limiter = new MemoryLimiter()
  const limits = { rpm: 0, maxConcurrency: 2 }
  const a = limiter.acquire('k', limits, minute)
  const b = limiter.acquire('k', limits, minute)
  t.same(limiter.acquire('k', limits, minute), { ok: false, limit: 'concurrency', retryAfterSeconds: 1 })
  t.equal(limiter.inFlight('k'), 2)
  if (a.ok) {
    a.release()
    a.release()
  }
  t.equal(limiter.inFlight('k'), 1, 'a second release frees nothing more')
  t.ok(granted(limiter.acquire('k', limits, minute)))
  t.same(limiter.acquire('k', { rpm: 0, maxConcurrency: 3 }, minute).ok, true, 'a raised limit applies to the same counts')
  if (b.ok) b.release()
  t.equal(limiter.inFlight('k'), 2)
})

t.test('a request refused for concurrency does not use up the minute', async (t) => {
  const limiter = new MemoryLimiter()
  const limits = { rpm: 2, maxConcurrency: 1 }
  const a = limiter.acquire('k', limits, minute)
  t.equal(limiter.acquire('k', limits, minute).ok, false)
  if (a.ok) a.release()
  t.ok(granted(limiter.acquire('k', limits, minute)), 'the second request of the minute')
})

t.test('no limits: nothing counted', async (t) => {
  const limiter = new MemoryLimiter()
  t.equal(limiter.acquire('k', { rpm: 0, maxConcurrency: 0 }, minute), UNLIMITED)
  t.equal(limiter.inFlight('k'), 0)
})
