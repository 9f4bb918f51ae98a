/**
 * The `corral` command: `corral [serve]` runs the proxy, `corral check-config` validates a
 * configuration, `corral bench` load-tests a deployment. Invalid configuration (or bench options)
 * is reported as one line per problem, never a stack trace, with exit status 2.
 */
import { readFileSync } from 'node:fs'
import { Command, Option } from 'commander'
import { stringify } from 'yaml'
import { BENCH_DEFAULTS, BenchUsageError, parseBenchOptions, WORKLOADS, type RawBenchOptions } from './bench/bench-options.js'
import { runBench } from './bench/run-bench.js'
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

  return program
}

await buildProgram().parseAsync(process.argv)
