/**
 * The `corral` command: `corral [serve]` runs the proxy, `corral check-config` validates a
 * configuration, `corral bench` load-tests a deployment, `corral demo` runs a simulated Ollama
 * fleet with corral in front (no GPU needed). Invalid configuration (or bench options)
 * is reported as one line per problem, never a stack trace, with exit status 2.
 */
import { readFileSync } from 'node:fs'
import { Command, Option } from 'commander'
import { stringify } from 'yaml'
import { BENCH_DEFAULTS, BenchUsageError, parseBenchOptions, WORKLOADS, type RawBenchOptions } from './bench/bench-options.js'
import { runBench } from './bench/run-bench.js'
import { DEMO_DEFAULTS, DemoUsageError, parseDemoOptions, type RawDemoOptions } from './demo/demo-options.js'
import { ConfigError, loadConfig, type ConfigFlags } from './config/load-config.js'
import { ConfigWatcher } from './config/config-watcher.js'
import { maskSecrets } from './config/mask-secrets.js'
import { LOG_LEVELS } from './config/schema.js'

const EXIT_INVALID_CONFIG = 2

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }

const EXAMPLES = `
Examples:
  $ corral                                   # 127.0.0.1:11435 -> $OLLAMA_HOST or http://127.0.0.1:11434
  $ corral --config config/corral.yaml
  $ corral --listen 0.0.0.0:11434 --instances http://gpu1:11434,http://gpu2:11434
  $ corral demo                              # try it without a GPU: simulated instances, corral in front
  $ corral check-config config/corral.yaml   # print the effective config, or every problem
  $ corral bench --url http://127.0.0.1:11435 --duration 30s --p95-max 2s
  $ corral --config corral.yaml --watch      # apply edits to corral.yaml as they are saved
  $ kill -HUP <pid>                          # reload corral.yaml now (or POST /api/admin/reload)

Then point any Ollama client at corral:
  $ OLLAMA_HOST=http://127.0.0.1:11435 ollama run llama3.2

Environment: CORRAL_CONFIG, CORRAL_LISTEN, CORRAL_INSTANCES, CORRAL_REDIS_URL, CORRAL_LOG_LEVEL
(flags > environment > config file > defaults).`

interface ServeOptions extends ConfigFlags {
  config?: string
  watch?: boolean
}

function reportConfigError(err: unknown): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`corral: ${err.message}\n`)
    process.exit(EXIT_INVALID_CONFIG)
  }
  throw err
}

async function serve(options: ServeOptions): Promise<void> {
  let loaded
  try {
    loaded = loadConfig({ file: options.config, env: process.env, flags: options })
  } catch (err) {
    reportConfigError(err)
  }
  const file = loaded.file
  if (options.watch === true && file === undefined) {
    process.stderr.write('corral: --watch needs a config file (--config or CORRAL_CONFIG)\n')
    process.exit(EXIT_INVALID_CONFIG)
  }
  // A reload reads the same file, environment and flags again.
  const configSource = { file, load: () => loadConfig({ file, env: process.env, flags: options }).config }
  // Loaded here, not at the top: `corral bench` and `check-config` start faster without the proxy.
  const { createCorral } = await import('./index.js')
  const corral = createCorral(loaded.config, { configSource })
  try {
    await corral.listen()
  } catch (err) {
    const e = err as NodeJS.ErrnoException
    const { host, port } = loaded.config.listen
    const why = e.code === 'EADDRINUSE' ? 'the address is already in use' : e.code === 'EACCES' ? 'permission denied' : e.message
    process.stderr.write(`corral: cannot listen on ${host}:${port}: ${why}\n`)
    process.exit(1)
  }
  const watcher =
    options.watch === true && file !== undefined
      ? new ConfigWatcher(file, () => corral.reloadFromSource('watch'), {
          onError: (err) => corral.logger.error({ err, file }, 'config watch failed: reload with SIGHUP'),
        })
      : undefined
  if (watcher !== undefined) corral.logger.info({ file }, 'watching the config file')
  process.on('SIGHUP', () => corral.reloadFromSource('SIGHUP'))
  let signals = 0
  const stop = (signal: NodeJS.Signals): void => {
    watcher?.close()
    if (++signals > 1) {
      corral.logger.warn({ signal }, 'second signal: exiting at once')
      process.exit(1)
    }
    corral.logger.info({ signal, in_flight: corral.proxy.active }, 'draining')
    corral.close().then(
      () => process.exit(0),
      (err: unknown) => {
        corral.logger.error({ err }, 'error while stopping')
        process.exit(1)
      },
    )
  }
  process.on('SIGINT', stop)
  process.on('SIGTERM', stop)
}

function checkConfig(file: string | undefined): void {
  try {
    const { effective, file: source } = loadConfig({ file, env: process.env })
    process.stdout.write(`# effective configuration${source ? ` of ${source}` : ''} (defaults filled, secrets masked)\n`)
    process.stdout.write(stringify(maskSecrets(effective)))
  } catch (err) {
    reportConfigError(err)
  }
}

const BENCH_EXAMPLES = `
A request is one user turn; in the rag workload that is POST /api/embed with the question, then
POST /api/generate with a prompt built from it. Errors: non-2xx (http_503...), transport errors
(ECONNREFUSED, ECONNRESET, socket_closed), timeout, stream_error (an error line in a stream),
stream_cut / body_cut (an answer cut short), bad_body. Latencies are of successful requests.

Exit status: 0 ok, 1 an SLO missed, 2 bad arguments, 130 interrupted by Ctrl-C (the partial
result is printed first; a second Ctrl-C aborts requests in flight at once).

Examples:
  $ corral bench --url http://127.0.0.1:11435 --concurrency 16 --duration 1m --zipf 1.1
  $ corral bench --url http://127.0.0.1:11435 --rate 30 --requests 2000 --stream
  $ corral bench --url http://127.0.0.1:11435 --compare http://gpu1:11434 --workload embed
  $ corral bench --url http://127.0.0.1:11435 --p95-max 130ms --min-rps 30 --max-error-rate 1% --json --out bench.json`

async function bench(raw: RawBenchOptions): Promise<void> {
  let options
  try {
    options = parseBenchOptions(raw)
    process.exitCode = await runBench(options, { stdout: process.stdout, stderr: process.stderr, signals: process })
  } catch (err) {
    if (err instanceof BenchUsageError) {
      process.stderr.write(`corral bench: ${err.message}\n`)
      process.exit(EXIT_INVALID_CONFIG)
    }
    throw err
  }
}

async function demo(raw: RawDemoOptions): Promise<void> {
  let options
  try {
    options = parseDemoOptions(raw)
  } catch (err) {
    if (!(err instanceof DemoUsageError)) throw err
    for (const line of err.message.split('\n')) process.stderr.write(`corral demo: ${line}\n`)
    process.exit(EXIT_INVALID_CONFIG)
  }
  // Loaded here: the other commands start faster without the fake fleet.
  const { runDemo } = await import('./demo/run-demo.js')
  process.exit(await runDemo(options, { stdout: process.stdout, stderr: process.stderr, signals: process }))
}

const DEMO_EXAMPLES = `
Examples:
  $ corral demo                                   # 3 instances (the last 3x slower), corral on 127.0.0.1:11435
  $ corral demo --instances 5 --token-ms 10 --port 8080
  $ corral demo --fleet-only --instances gpu1:1,gpu2:1,old:3 --json   # just the fleet, for benchmarks`

export function buildProgram(): Command {
  const program = new Command('corral')
    .description('A load-balancing, caching reverse proxy that speaks the Ollama API.')
    .version(pkg.version, '-v, --version')
    .addHelpText('after', EXAMPLES)
    .showHelpAfterError()

  program
    .command('serve', { isDefault: true })
    .description('run the proxy (the default command)')
    .option('-c, --config <file>', 'YAML config file (env CORRAL_CONFIG)')
    .option('-l, --listen <host:port>', 'address to listen on (env CORRAL_LISTEN; default 127.0.0.1:11435)')
    .option('-i, --instances <urls>', 'comma-separated Ollama origins (env CORRAL_INSTANCES)')
    .option('--redis <url>', 'Redis URL for the shared cache (env CORRAL_REDIS_URL)')
    .addOption(new Option('--log-level <level>', 'log level (env CORRAL_LOG_LEVEL; default info)').choices(LOG_LEVELS))
    .option('-w, --watch', 'reload the config file when it changes (SIGHUP always reloads it)')
    .addHelpText('after', EXAMPLES)
    .action((options: ServeOptions) => serve(options))

  program
    .command('check-config')
    .description('validate a config file and print the effective configuration (exit 2 when invalid)')
    .argument('[file]', 'YAML config file (default: $CORRAL_CONFIG, else the defaults alone)')
    .action((file: string | undefined) => checkConfig(file))

  program
    .command('bench')
    .description('load-test corral or any Ollama-compatible server and print latency, throughput, errors and cache hit rates')
    .option('-u, --url <url>', 'target origin (required), e.g. http://127.0.0.1:11435')
    .option('--compare <url>', 'run the same workload against this second target afterwards and print both side by side with ratios')
    .option('-w, --workload <kind>', `what one request is: ${WORKLOADS.join(', ')}`, BENCH_DEFAULTS.workload)
    .option('-c, --concurrency <users>', `closed loop: simulated users, each sending its next request when the last one ends (default ${BENCH_DEFAULTS.concurrency}); with --rate: connections, i.e. requests in flight (default ${BENCH_DEFAULTS.openLoopConnections})`)
    .option('-r, --rate <req/s>', 'open loop: Poisson arrivals at this mean rate instead of a closed loop')
    .option('-d, --duration <time>', `length of the measured run, e.g. 500ms, 30s, 2m (default ${BENCH_DEFAULTS.duration} unless --requests is given)`)
    .option('-n, --requests <n>', 'send exactly this many requests (with --duration too: whichever ends first)')
    .option('--warmup <time>', 'run the workload this long first, uncounted (default 0)')
    .option('--timeout <time>', 'a request not answered completely within this is an error (timeout)', BENCH_DEFAULTS.timeout)
    .option('-m, --model <name>', 'model for generate and chat', BENCH_DEFAULTS.model)
    .option('-e, --embed-model <name>', 'model for embeddings', BENCH_DEFAULTS.embedModel)
    .option('-p, --prompts <file>', 'questions, one per line (default: a built-in set of 40)')
    .option('--zipf <s>', 'repeat questions with a Zipf skew s (about 1 for real query logs; default: in order)')
    .option('--stream', 'stream answers and measure time to first token (default: not streamed)')
    .option('--temperature <t>', 'options.temperature of generations', String(BENCH_DEFAULTS.temperature))
    .option('--seed <n>', 'PRNG seed for questions and arrivals (default: random, printed)')
    .option('--p95-max <time>', 'SLO: exit 1 if the p95 latency is above this (e.g. 130ms)')
    .option('--min-rps <n>', 'SLO: exit 1 if throughput is below this many requests per second')
    .option('--max-error-rate <r>', 'SLO: exit 1 if the error rate is above this (0.01 or 1%); default: exit 1 when every request failed')
    .option('--bulk <clients>', 'also run a bulk job beside the users: this many clients sending /api/embed batches back to back, reported apart')
    .option('--bulk-batch <n>', 'inputs per batch of the bulk job (default 32)')
    .option('--json', 'print the result as JSON instead of a table')
    .option('-o, --out <file>', 'also write the JSON result to this file')
    .addHelpText('after', BENCH_EXAMPLES)
    // Bad arguments exit 2 like every other usage error here (commander's own default is 1).
    .showHelpAfterError('(corral bench --help lists the options)')
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_INVALID_CONFIG))
    .action((options: RawBenchOptions) => bench(options))

  program
    .command('demo')
    .description('run simulated Ollama instances with corral in front, and print what to curl (no GPU needed)')
    .option('-p, --port <port>', `corral's port on 127.0.0.1`, String(DEMO_DEFAULTS.port))
    .option('-n, --instances <n|list>', 'how many instances (the last one 3x slower), or name:speed,... (speed 2 = twice as slow)', DEMO_DEFAULTS.instances)
    .option('--slots <n>', 'inference slots per instance, like OLLAMA_NUM_PARALLEL', String(DEMO_DEFAULTS.slots))
    .option('--max-queue <n>', 'requests waiting for a slot before 503, like OLLAMA_MAX_QUEUE', String(DEMO_DEFAULTS.maxQueue))
    .option('--prompt-ms <ms>', 'time to the first token of a generation', String(DEMO_DEFAULTS.promptMs))
    .option('--token-ms <ms>', 'time per generated token', String(DEMO_DEFAULTS.tokenMs))
    .option('--embed-ms <ms>', 'time per embedding input', String(DEMO_DEFAULTS.embedMs))
    .option('--tokens <n>', 'answer length when a request sets no num_predict (and the most it may ask for)', String(DEMO_DEFAULTS.tokens))
    .option('--fleet-only', 'run only the simulated instances, no corral (for benchmarks)')
    .option('--fleet-port <port>', 'first instance port, the others follow (default: free ports)')
    .option('--control-port <port>', 'control channel: GET /stats, /bench/stats; POST /kill?name=, /speed?name=&factor= (default: a free port with --fleet-only, else none)')
    .option('--precomputed', 'answer embeddings from 256 precomputed vectors per model (cheap, for benchmarks)')
    .option('--frozen-timings', 'fixed created_at and nominal durations, so equal requests get equal bytes')
    .option('--json', 'print one JSON line describing the fleet instead of the guide')
    .addOption(new Option('--log-level <level>', `corral's log level (default ${DEMO_DEFAULTS.logLevel})`).choices(LOG_LEVELS))
    .addHelpText('after', DEMO_EXAMPLES)
    .showHelpAfterError('(corral demo --help lists the options)')
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_INVALID_CONFIG))
    .action((options: RawDemoOptions) => demo(options))

  return program
}

await buildProgram().parseAsync(process.argv)
