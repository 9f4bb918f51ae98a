/**
 * The health state machine, driven with explicit times: active thresholds, passive ejection
 * growing n x ejection_time up to the cap, the single half-open probe, slow start, and one
 * listener call per state change.
 */
import t from 'tap'
import { HealthState, type HealthStateName } from '../../src/balancer/health-state.js'

const RULES = { unhealthyAfter: 2, healthyAfter: 2, ejectAfter: 3, ejectionTimeMs: 30_000, maxEjectionTimeMs: 75_000, slowStartMs: 10_000 }

function tracked(): { state: HealthState; changes: string[] } {
  const changes: string[] = []
  const state = new HealthState(RULES, (from: HealthStateName, to: HealthStateName) => changes.push(`${from}->${to}`))
  return { state, changes }
}

t.test('active checks: unhealthy_after failures mark it down, healthy_after passes bring it back', async (t) => {
  const { state, changes } = tracked()
  t.equal(state.state(0), 'healthy', 'instances start healthy')
  state.onCheck(true, 0)
  state.onCheck(false, 0, 'ECONNREFUSED', true)
  t.equal(state.state(0), 'healthy', 'one failure is not enough')
  state.onCheck(true, 1)
  state.onCheck(false, 2, 'ECONNREFUSED')
  t.equal(state.state(2), 'healthy', 'a pass in between resets the count')
  state.onCheck(false, 3, 'ECONNREFUSED')
  t.equal(state.state(3), 'unhealthy')
  t.notOk(state.admits(3))
  state.onCheck(true, 4)
  t.equal(state.state(4), 'unhealthy', 'healthy_after is 2')
  state.onCheck(true, 5)
  t.equal(state.state(5), 'healthy')
  t.same(changes, ['healthy->unhealthy', 'unhealthy->healthy'], 'one listener call per change')
  t.equal(state.lastCheckOk, true)
  t.equal(state.lastCheckAt, 5)
})

t.test('passive: eject_after failures in a row eject for n x ejection_time, capped', async (t) => {
  const { state, changes } = tracked()
  state.onFailure(0, 'refused')
  state.onFailure(0, 'refused')
  state.onSuccess(0)
  state.onFailure(0, 'refused')
  state.onFailure(0, 'refused')
  t.equal(state.state(0), 'healthy', 'a success in between resets the count')
  state.onFailure(0, 'refused')
  t.equal(state.state(0), 'ejected')
  t.equal(state.ejectedUntil, 30_000, 'first ejection: 1 x 30 s')
  t.notOk(state.admits(29_999))
  // Time is up: half-open, one request at a time.
  t.ok(state.admits(30_000))
  t.equal(state.state(30_000), 'half_open')
  state.onDispatch()
  t.notOk(state.admits(30_001), 'a second request waits while the probe is out')
  state.onFailure(30_100, 'refused')
  t.equal(state.state(30_100), 'ejected', 'the probe failed: ejected again')
  t.equal(state.ejectedUntil, 30_100 + 60_000, 'second ejection in a row: 2 x 30 s')
  t.ok(state.admits(90_100))
  state.onDispatch()
  state.onFailure(90_200, 'refused')
  t.equal(state.ejectedUntil, 90_200 + 75_000, 'third: capped at max_ejection_time')
  t.ok(state.admits(165_200))
  state.onDispatch()
  state.onSuccess(165_300)
  t.equal(state.state(165_300), 'healthy', 'the probe succeeded: closed')
  t.same(changes, [
    'healthy->ejected', 'ejected->half_open', 'half_open->ejected', 'ejected->half_open',
    'half_open->ejected', 'ejected->half_open', 'half_open->healthy',
  ])
})

t.test('a half-open probe whose client left frees the slot without a verdict', async (t) => {
  const { state } = tracked()
  for (let i = 0; i < 3; i++) state.onFailure(0, 'reset')
  t.ok(state.admits(30_000))
  state.onDispatch()
  t.notOk(state.admits(30_000))
  state.onNeutral()
  t.ok(state.admits(30_000), 'the next request may test it')
  t.equal(state.state(30_000), 'half_open')
})

t.test('eject_after 0 turns passive ejection off', async (t) => {
  const state = new HealthState({ ...RULES, ejectAfter: 0 }, () => {})
  for (let i = 0; i < 50; i++) state.onFailure(i, 'reset')
  t.equal(state.state(50), 'healthy')
})

t.test('slow start after a recovery: weight factor from 10% to 100%', async (t) => {
  const { state } = tracked()
  t.equal(state.weightFactor(0), 1, 'no ramp at start')
  state.onCheck(false, 0)
  state.onCheck(false, 0)
  state.onCheck(true, 1000)
  state.onCheck(true, 1000)
  t.equal(state.weightFactor(1000), 0.1)
  t.equal(state.weightFactor(6000), 0.5)
  t.equal(state.weightFactor(11_000), 1)
  for (let i = 0; i < 3; i++) state.onFailure(20_000, 'reset')
  state.admits(50_000)
  state.onDispatch()
  state.onSuccess(50_000)
  t.equal(state.weightFactor(50_000), 0.1, 'a closed circuit ramps up too')
})

t.test('an instance unreachable at its first check is unhealthy at once', async (t) => {
  const answered = tracked()
  answered.state.onCheck(false, 0, 'status 503')
  t.equal(answered.state.state(0), 'healthy', 'one that answers an error is alive: unhealthy_after applies')
  const { state, changes } = tracked()
  state.onCheck(false, 0, 'ECONNREFUSED', true)
  t.equal(state.state(0), 'unhealthy', 'not unhealthy_after intervals later')
  t.same(changes, ['healthy->unhealthy'])
  state.onCheck(true, 1)
  t.equal(state.state(1), 'unhealthy', 'healthy_after passes bring it back as usual')
  state.onCheck(true, 2)
  t.equal(state.state(2), 'healthy')
})
