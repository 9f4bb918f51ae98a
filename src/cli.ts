/**
 * The `corral` command: `corral [serve]` runs the proxy, `corral check-config` validates a
 * configuration. Invalid configuration is reported as one line per problem, never a stack trace,
 * with exit status 2.
 */
import { readFileSync } from 'node:fs'
import { Command, Option } from 'commander'
import { stringify } from 'yaml'
import { ConfigError, loadConfig, type ConfigFlags } from './config/load-config.js'
import { ConfigWatcher } from './config/config-watcher.js'
import { maskSecrets } from './config/mask-secrets.js'
import { LOG_LEVELS } from './config/schema.js'
import { createCorral } from './index.js'

const EXIT_INVALID_CONFIG = 2

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }

const EXAMPLES = `
Examples:
  $ corral                                   # 127.0.0.1:11435 -> $OLLAMA_HOST or http://127.0.0.1:11434
  $ corral --config config/corral.yaml
  $ corral --listen 0.0.0.0:11434 --instances http://gpu1:11434,http://gpu2:11434
  $ corral check-config config/corral.yaml   # print the effective config, or every problem
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

  return program
}

await buildProgram().parseAsync(process.argv)
