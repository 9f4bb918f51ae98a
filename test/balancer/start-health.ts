/**
 * An instance down at start is reported at once: the first round of health checks runs when
 * corral starts listening, each instance's first outcome is logged, and the stats, /readyz and
 * the metrics agree from then on (not `unhealthy_after` intervals later).
 */
import t from 'tap'
import { freePort } from '../fixtures/child-server.js'
import { startFakeOllama } from '../fixtures/fake-ollama.js'
import { send } from '../fixtures/http.js'
import { startCorral } from '../fixtures/start-corral.js'
import { waitFor } from '../fixtures/wait-for.js'

interface Stats {
  instances: { name: string; state: string; last_check_ok: boolean | null }[]
}

t.test('an instance down at start: unhealthy after the first check, logged, and every view agrees', async (t) => {
  const up = await startFakeOllama()
  t.teardown(() => up.close())
  // Nothing listens there: connections are refused.
  const down = `http://127.0.0.1:${await freePort()}`
  // The default interval (30 s) and unhealthy_after (2): only the first check can tell in time.
  const { corral, url, logs } = await startCorral(t, [up.url, down])
  const [, dead] = corral.balancer.instances
  await waitFor('the first health check of both instances', () => corral.balancer.instances.every((i) => i.health.lastCheckOk !== undefined))

  t.equal(dead!.health.state(Date.now()), 'unhealthy')
  t.match(logs.find((l) => l.msg === 'instance down: first health check failed'), { level: 'warn', instance: 'i1', url: down, err: /ECONNREFUSED/ })
  t.match(logs.find((l) => l.msg === 'instance up: first health check passed'), { level: 'info', instance: 'i0' })
  t.match(logs.find((l) => l.msg === 'instance unhealthy'), { instance: 'i1', reason: /^unreachable at the first health check: ECONNREFUSED/ })

  const stats = (await send(url, 'GET', '/api/load-balancer-stats')).json as Stats
  t.match(stats.instances, [
    { name: 'i0', state: 'healthy', last_check_ok: true },
    { name: 'i1', state: 'unhealthy', last_check_ok: false },
  ])
  const ready = await send(url, 'GET', '/readyz')
  t.equal(ready.status, 200, 'one instance is enough to be ready')
  t.match(ready.json, { instances: [{ name: 'i0', reachable: true }, { name: 'i1', reachable: false }] })
  const metrics = (await send(url, 'GET', '/metrics')).text
  t.match(metrics, /corral_instance_up\{instance="i0"\} 1\n/)
  t.match(metrics, /corral_instance_up\{instance="i1"\} 0\n/)
  t.equal(up.count('/api/generate'), 0)
  t.equal((await send(url, 'POST', '/api/generate', { model: 'llama3.2', prompt: 'hi', stream: false })).status, 200, 'traffic goes to the one that is up')
})
