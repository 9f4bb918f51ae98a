/**
 * `corral demo`: a simulated Ollama fleet on 127.0.0.1 with corral in front (default
 * configuration, memory cache), or the fleet alone (--fleet-only) for benchmarks. Prints what to
 * curl and runs until SIGINT/SIGTERM, then drains corral and stops the fleet.
 */
import { configFromObject } from '../config/load-config.js'
import { CallTally } from './call-tally.js'
import { startDemoFleet, type DemoFleet } from './demo-fleet.js'
import { demoGuide, demoJson } from './demo-guide.js'
import type { DemoOptions } from './demo-options.js'
import { startFleetControl, type FleetControl } from './fleet-control.js'

export interface DemoIo {
  stdout: NodeJS.WritableStream
  stderr: NodeJS.WritableStream
  /** Where SIGINT/SIGTERM arrive (the process). */
  signals: NodeJS.EventEmitter
}

/** Runs the demo until a signal; resolves with the exit status. */
export async function runDemo(options: DemoOptions, io: DemoIo): Promise<number> {
  const tally = new CallTally()
  let fleet: DemoFleet | undefined
  let control: FleetControl | undefined
  let corral: { close(): Promise<void> } | undefined
  const stopAll = async (): Promise<void> => {
    await corral?.close()
    await control?.close()
    await fleet?.close()
  }
  try {
    fleet = await startDemoFleet(options.fleet, (request) => tally.add(request))
    if (options.controlPort !== undefined) control = await startFleetControl(fleet, tally, options.controlPort)
    let corralUrl: string | undefined
    if (!options.fleetOnly) {
      const { config } = configFromObject({
        listen: `127.0.0.1:${options.port}`,
        instances: fleet.instances.map((i) => ({ url: i.url, name: i.name })),
        log: { level: options.logLevel },
      })
      // Loaded here: --fleet-only starts without the proxy.
      const { createCorral } = await import('../index.js')
      const running = createCorral(config)
      corral = running
      corralUrl = await running.listen()
      await running.discovered()
    }
    const at = { instances: fleet.instances, corral: corralUrl, control: control?.url }
    io.stdout.write(options.json ? demoJson(options, at) : demoGuide(options, at))
  } catch (err) {
    await stopAll()
    const e = err as NodeJS.ErrnoException
    const why = e.code === 'EADDRINUSE' ? `an address is already in use (${e.message})` : e.message
    io.stderr.write(`corral demo: ${why}\n`)
    return 1
  }
  const signal = await new Promise<string>((resolve) => {
    io.signals.once('SIGINT', () => resolve('SIGINT'))
    io.signals.once('SIGTERM', () => resolve('SIGTERM'))
  })
  if (!options.json) io.stderr.write(`corral demo: ${signal}, stopping\n`)
  await stopAll()
  return 0
}
