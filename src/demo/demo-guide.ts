/**
 * What `corral demo` prints once everything listens: the fleet, and the curls that show corral
 * balancing and caching. As JSON (--json) it is one line a script can read.
 */
import type { DemoInstance } from './demo-fleet.js'
import type { DemoOptions } from './demo-options.js'

export interface DemoAddresses {
  readonly instances: readonly DemoInstance[]
  /** corral's base URL; undefined with --fleet-only. */
  readonly corral: string | undefined
  /** The control channel's URL, when there is one. */
  readonly control: string | undefined
}

/** One JSON line: `{"corral", "control", "slots", "prompt_ms", "token_ms", "instances": [{name, url, speed}]}`. */
export function demoJson(options: DemoOptions, at: DemoAddresses): string {
  return JSON.stringify({
    corral: at.corral,
    control: at.control,
    slots: options.fleet.slots,
    prompt_ms: options.fleet.promptDelayMs,
    token_ms: options.fleet.tokenDelayMs,
    embed_ms: options.fleet.embedDelayMs,
    instances: at.instances.map((i) => ({ name: i.name, url: i.url, speed: i.speed })),
  }) + '\n'
}

export function demoGuide(options: DemoOptions, at: DemoAddresses): string {
  const { fleet } = options
  const width = Math.max(8, ...at.instances.map((i) => i.name.length)) + 2
  const lines = [
    `corral demo: ${at.instances.length} simulated Ollama instance${at.instances.length === 1 ? '' : 's'} (no GPU needed)` +
      `${at.corral === undefined ? '' : ', corral in front'}.`,
    `Each has ${fleet.slots} slot${fleet.slots === 1 ? '' : 's'}, ${fleet.promptDelayMs} ms to the first token, ` +
      `${fleet.tokenDelayMs} ms a token, ${fleet.embedDelayMs} ms an embedding input; models llama3.2 and nomic-embed-text.`,
    '',
    ...at.instances.map((i) => `  ${i.name.padEnd(width)}${i.url}${i.speed === 1 ? '' : `   ${i.speed}x slower`}`),
  ]
  if (at.control !== undefined) lines.push(`  ${'control'.padEnd(width)}${at.control}   GET /stats, /bench/stats; POST /kill?name=, /speed?name=&factor=`)
  if (at.corral === undefined) return [...lines, '', 'Ctrl-C stops the fleet.', ''].join('\n')
  const c = at.corral
  const chat = '{"model":"llama3.2","messages":[{"role":"user","content":"Why is the sky blue?"}],"options":{"temperature":0}}'
  lines.push(
    `  ${'corral'.padEnd(width)}${c}   memory cache, default configuration`,
    '',
    'Try, in another terminal:',
    `  curl -s ${c}/api/tags                      # the models, merged over the fleet`,
    `  curl -s ${c}/api/embed -d '{"model":"nomic-embed-text","input":["a llama","a corral"]}' | head -c 300; echo`,
    '',
    '  # a chat streams token by token; send it twice: the second answer comes from the cache at once',
    `  curl -si ${c}/api/chat -d '${chat}' | grep -iE '^x-corral|done'`,
    `  curl -si ${c}/api/chat -d '${chat}' | grep -iE '^x-corral|done'`,
    '',
    `  curl -s ${c}/api/load-balancer-stats        # where requests went, load per instance`,
    `  curl -s ${c}/metrics | grep '^corral_'       # Prometheus metrics`,
    `  OLLAMA_HOST=${c} ollama run llama3.2         # any Ollama client works`,
    `  corral bench --url ${c} --duration 20s      # load: watch the slower instance get less work`,
    '',
    'Ctrl-C stops corral and the fleet.',
    '',
  )
  return lines.join('\n')
}
