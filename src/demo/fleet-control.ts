/**
 * The control channel of a demo fleet, over HTTP on 127.0.0.1, for benchmarks and curious users:
 *
 *   GET  /stats                    per instance: generations received, completed, cut, aborted,
 *                                  running, queued; and how late the process's timers fire
 *   GET  /bench/stats              calls that reached the fleet: {"calls", "distinct", "inputs"}
 *   POST /kill?name=N              N closes its listener and drops every socket
 *   POST /speed?name=N&factor=F    N runs F times slower than the time model (1 = normal)
 */
import { once } from 'node:events'
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'
import type { CallTally } from './call-tally.js'
import type { DemoFleet } from './demo-fleet.js'

const LAG_RESOLUTION_MS = 1

export interface FleetControl {
  readonly url: string
  close(): Promise<void>
}

/** Starts the control channel on `port` (0: any free port). */
export async function startFleetControl(fleet: DemoFleet, tally: CallTally, port: number): Promise<FleetControl> {
  // Timers fire late on a busy machine, whatever the balancer in front: the benchmark says so.
  const lag = monitorEventLoopDelay({ resolution: LAG_RESOLUTION_MS })
  lag.enable()
  const server = createServer((req, res) => {
    req.resume()
    const url = new URL(req.url ?? '/', 'http://control')
    if (req.method === 'GET' && url.pathname === '/stats') {
      return reply(res, 200, { instances: fleet.instances.map((i) => ({ ...i.stats(), timer_late_ms: lateness(lag) })) })
    }
    if (req.method === 'GET' && url.pathname === '/bench/stats') return reply(res, 200, tally.counts())
    if (req.method !== 'POST') return reply(res, 404, { error: 'not found' })
    const name = url.searchParams.get('name') ?? ''
    const instance = fleet.instances.find((i) => i.name === name)
    if (instance === undefined) return reply(res, 404, { error: `no instance ${name}` })
    if (url.pathname === '/kill') {
      return void instance.kill().then(() => reply(res, 200, instance.stats()))
    }
    if (url.pathname === '/speed') {
      const factor = Number(url.searchParams.get('factor'))
      if (!(factor > 0)) return reply(res, 400, { error: 'factor must be > 0' })
      instance.setSpeed(factor)
      return reply(res, 200, instance.stats())
    }
    reply(res, 404, { error: 'not found' })
  })
  server.listen(port, '127.0.0.1')
  await once(server, 'listening')
  const bound = (server.address() as AddressInfo).port
  return { url: `http://127.0.0.1:${bound}`, close: () => closeServer(server, lag) }
}

/** The histogram samples a 1 ms timer: what it records beyond that 1 ms is lateness. */
function lateness(lag: IntervalHistogram): { mean: number; max: number } {
  const mean = Number.isNaN(lag.mean) ? 0 : Math.max(0, lag.mean / 1e6 - LAG_RESOLUTION_MS)
  const max = Math.max(0, lag.max / 1e6 - LAG_RESOLUTION_MS)
  return { mean: Math.round(mean * 100) / 100, max: Math.round(max * 10) / 10 }
}

function reply(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value)
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) })
  res.end(body)
}

async function closeServer(server: Server, lag: IntervalHistogram): Promise<void> {
  lag.disable()
  if (!server.listening) return
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}
