import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError, configFromObject, loadConfig, ollamaHostOrigin } from '../../src/config/load-config.js'
import { configJsonSchemaText } from '../../src/config/json-schema.js'
import { maskSecrets } from '../../src/config/mask-secrets.js'

const dir = mkdtempSync(join(tmpdir(), 'corral-config-'))
let n = 0
function yamlFile(text: string): string {
  const file = join(dir, `c${n++}.yaml`)
  writeFileSync(file, text)
  return file
}

/** The problems `load` is rejected with (none when it succeeds). */
function problemsOf(load: () => unknown): readonly string[] {
  try {
    load()
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}
const problems = (raw: Record<string, unknown>): readonly string[] => problemsOf(() => configFromObject(raw))

t.test('defaults: listen 127.0.0.1:11435, one instance at 127.0.0.1:11434, memory cache', async (t) => {
  const { config } = loadConfig({ env: {} })
  t.same(config.listen, { host: '127.0.0.1', port: 11435 })
  t.same(config.instances, [{ name: '127.0.0.1:11434', url: 'http://127.0.0.1:11434', weight: 1, maxConcurrency: undefined }])
  t.equal(config.redis, undefined)
  t.equal(config.logLevel, 'info')
  t.equal(config.balancer.policy, 'load-score')
  t.same(config.proxy, {
    maxAttempts: 3,
    retryOn: [500, 502, 503, 504],
    connectTimeoutMs: 5000,
    firstByteTimeoutMs: 300_000,
    idleTimeoutMs: 300_000,
    connectionsPerInstance: 128,
  })
  t.equal(config.server.drainTimeoutMs, 30_000)
  t.equal(config.server.headersTimeoutMs, 10_000)
  t.ok(Object.isFrozen(config) && Object.isFrozen(config.instances[0]), 'frozen')
})

t.test('limits defaults: body sizes per kind of route, no connection or per-client limit, no trusted proxy', async (t) => {
  const { config } = loadConfig({ env: {} })
  const MiB = 1024 * 1024
  t.same(config.limits.maxBodyBytes, { generation: 32 * MiB, embedding: 16 * MiB, model: MiB, upload: 0, other: 32 * MiB })
  t.equal(config.server.maxConnections, 0)
  t.equal(config.server.maxRequestsPerClient, 0)
  t.equal(config.server.trustProxy, false)
  const set = configFromObject({
    limits: { max_body_size: { embedding: '2MiB', upload: '10GiB' } },
    server: { max_connections: 500, max_requests_per_client: 8, trust_proxy: ['10.0.0.0/8', '::1'] },
  }).config
  t.same(set.limits.maxBodyBytes, { generation: 32 * MiB, embedding: 2 * MiB, model: MiB, upload: 10 * 1024 * MiB, other: 32 * MiB })
  t.same(set.server.trustProxy, ['10.0.0.0/8', '::1'])
  t.equal(set.server.maxRequestsPerClient, 8)
})

t.test('proxy.max_body_size from older files still sets every body read whole; the new keys win', async (t) => {
  const legacy = configFromObject({ proxy: { max_body_size: '64KiB', max_attempts: 2 } })
  t.same(legacy.config.limits.maxBodyBytes, { generation: 65536, embedding: 65536, model: 65536, upload: 0, other: 65536 })
  t.equal(legacy.config.proxy.maxAttempts, 2, 'the rest of proxy is untouched')
  t.notOk('max_body_size' in legacy.effective.proxy, 'the effective configuration shows the new place')
  const both = configFromObject({ proxy: { max_body_size: '64KiB' }, limits: { max_body_size: { model: '1KiB' } } })
  t.equal(both.config.limits.maxBodyBytes.model, 1024)
  t.equal(both.config.limits.maxBodyBytes.generation, 65536)
  t.same(problems({ proxy: { max_body_size: 'huge' } }).length, 4, 'a bad legacy value is reported where it now lives')
})

t.test('cache defaults: memory store 256MiB, layers 7d / 30d / 24h, deterministic generations', async (t) => {
  const { cache, redis } = loadConfig({ env: {} }).config
  t.equal(redis, undefined)
  t.same(cache, {
    enabled: true,
    responseHeader: true,
    maxEntryBytes: 8 * 1024 * 1024,
    singleFlight: true,
    shareAcrossKeys: false,
    memoryMaxBytes: 256 * 1024 * 1024,
    layers: {
      embedding: { enabled: true, ttlMs: 7 * 86_400_000 },
      chunk: { enabled: true, ttlMs: 30 * 86_400_000 },
      inference: { enabled: true, ttlMs: 86_400_000, policy: 'deterministic' },
    },
  })
  const withRedis = configFromObject({ redis: { url: 'redis://r:6379' } }).config.redis
  t.match(withRedis, { url: 'redis://r:6379', commandTimeoutMs: 50, retryIntervalMs: 1000, keyPrefix: 'corral:', localCacheBytes: 32 * 1024 * 1024, localTtlMs: 300_000 })
  const sentinel = configFromObject({ redis: { sentinels: ['s1:26379', '[::1]:26380'], name: 'm' } }).config.redis
  t.same(sentinel?.sentinels, [{ host: 's1', port: 26379 }, { host: '::1', port: 26380 }])
  t.same(configFromObject({ redis: { url: null, cluster: ['redis://a:7000'] } }).config.redis?.cluster, ['redis://a:7000'], 'an empty key means unset')
})

t.test('the RAG example caches every generation, in Redis', async (t) => {
  const { config } = loadConfig({ file: 'config/rag.example.yaml', env: { REDIS_PASSWORD: 'pw' } })
  t.equal(config.cache.layers.inference.policy, 'always')
  t.equal(config.redis?.url, 'redis://:pw@127.0.0.1:6379/0')
})

t.test('listen accepts host:port and [ipv6]:port', async (t) => {
  t.same(configFromObject({ listen: '[::1]:11435' }).config.listen, { host: '::1', port: 11435 })
  t.same(configFromObject({ listen: '0.0.0.0:0' }).config.listen, { host: '0.0.0.0', port: 0 })
  t.same(configFromObject({ listen: 'localhost:8080' }).config.listen, { host: 'localhost', port: 8080 })
  t.same(problems({ listen: '::1:11435' }), ['listen must be host:port (or [ipv6]:port), got "::1:11435"'])
  t.same(problems({ listen: '0.0.0.0:11434', instances: [{ url: 'http://127.0.0.1:11434' }] }).length, 1, 'listening on all addresses includes loopback: a loop')
})

t.test('OLLAMA_HOST gives the default instance, read like the Ollama client does', async (t) => {
  t.equal(loadConfig({ env: { OLLAMA_HOST: 'gpu-box' } }).config.instances[0]!.url, 'http://gpu-box:11434')
  t.equal(ollamaHostOrigin('10.0.0.5:9000'), 'http://10.0.0.5:9000')
  t.equal(ollamaHostOrigin('https://ollama.example'), 'https://ollama.example')
  t.equal(ollamaHostOrigin('http://h'), 'http://h')
  t.equal(ollamaHostOrigin(''), 'http://127.0.0.1:11434')
  t.equal(ollamaHostOrigin(undefined), 'http://127.0.0.1:11434')
  const file = yamlFile('instances:\n  - url: http://from-file:11434\n')
  t.equal(loadConfig({ file, env: { OLLAMA_HOST: 'ignored' } }).config.instances[0]!.url, 'http://from-file:11434', 'a file wins')
})

t.test('precedence: flags > environment > file > defaults', async (t) => {
  const file = yamlFile('listen: 127.0.0.1:1001\nlog: { level: warn }\ninstances:\n  - url: http://file:1\n')
  const env = { CORRAL_LISTEN: '127.0.0.1:1002', CORRAL_INSTANCES: 'http://env:1, http://env:2', CORRAL_LOG_LEVEL: 'error', CORRAL_REDIS_URL: 'redis://env:6379' }
  const fromFile = loadConfig({ file, env: {} }).config
  t.equal(fromFile.listen.port, 1001)
  t.equal(fromFile.logLevel, 'warn')
  const fromEnv = loadConfig({ file, env }).config
  t.equal(fromEnv.listen.port, 1002)
  t.same(fromEnv.instances.map((i) => i.url), ['http://env:1', 'http://env:2'])
  t.equal(fromEnv.logLevel, 'error')
  t.equal(fromEnv.redis?.url, 'redis://env:6379')
  const fromFlags = loadConfig({ file, env, flags: { listen: '127.0.0.1:1003', instances: 'http://flag:1', logLevel: 'debug', redis: 'redis://flag:6379' } }).config
  t.equal(fromFlags.listen.port, 1003)
  t.same(fromFlags.instances.map((i) => i.url), ['http://flag:1'])
  t.equal(fromFlags.logLevel, 'debug')
  t.equal(fromFlags.redis?.url, 'redis://flag:6379')
  t.equal(loadConfig({ env: { CORRAL_CONFIG: file } }).config.listen.port, 1001, 'CORRAL_CONFIG names the file')
})

t.test('${ENV} interpolation in string values', async (t) => {
  const file = yamlFile('instances:\n  - url: http://${GPU_HOST}:11434\n    name: ${NAME:-gpu}\nredis:\n  url: redis://:${PW}@r:6379\nlisten: "127.0.0.1:$${X}"\n')
  const { config } = configFromObjectFile(file, { GPU_HOST: 'box', PW: 's3cret' })
  t.equal(config.instances[0]!.url, 'http://box:11434')
  t.equal(config.instances[0]!.name, 'gpu', 'default after :-')
  t.equal(config.redis?.url, 'redis://:s3cret@r:6379')
  t.same(problemsOf(() => loadConfig({ file, env: { PW: 'x' } })), ['instances[0].url references ${GPU_HOST}, which is not set'])
})

function configFromObjectFile(file: string, env: Record<string, string>) {
  try {
    return loadConfig({ file, env })
  } catch (err) {
    // the literal $${X} is not a valid listen value; everything else must be fine
    t.match((err as ConfigError).problems, ['listen must be host:port (or [ipv6]:port), got "127.0.0.1:${X}"'])
    return loadConfig({ file, env, flags: { listen: '127.0.0.1:1' } })
  }
}

t.test('one rule per field, each reported with its path, all at once', async (t) => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['listen', { listen: 'nope' }, 'listen must be host:port (or [ipv6]:port), got "nope"'],
    ['listen port range', { listen: '127.0.0.1:70000' }, 'listen must be host:port (or [ipv6]:port), got "127.0.0.1:70000"'],
    ['url with path', { instances: [{ url: 'http://a:1/x' }] }, 'instances[0].url must be an http(s) origin without a path, got "http://a:1/x"'],
    ['url scheme', { instances: [{ url: 'ftp://a' }] }, 'instances[0].url must be an http(s) origin without a path, got "ftp://a"'],
    ['url missing', { instances: [{ name: 'x' }] }, 'instances[0].url is required'],
    ['url type', { instances: [{ url: 5 }] }, 'instances[0].url must be a string, got number 5'],
    ['no instances', { instances: [] }, 'instances must list at least one instance'],
    ['name', { instances: [{ url: 'http://a:1', name: 'has space' }] }, 'instances[0].name must be 1-64 letters, digits or . _ : -, got "has space"'],
    ['weight', { instances: [{ url: 'http://a:1', weight: 0 }] }, 'instances[0].weight must be a number above 0, got 0'],
    ['max_concurrency', { instances: [{ url: 'http://a:1', max_concurrency: 1.5 }] }, 'instances[0].max_concurrency must be a whole number, got number 1.5'],
    ['unknown key', { instances: [{ url: 'http://a:1', wieght: 2 }] }, 'instances[0] has unknown key "wieght"'],
    ['top-level unknown key', { lisen: 'x' }, '(top level) has unknown key "lisen"'],
    ['duplicate name', { instances: [{ url: 'http://a:1', name: 'x' }, { url: 'http://b:1', name: 'x' }] }, 'instances[1].name duplicates the name of instances[0]: "x"'],
    ['duplicate url', { instances: [{ url: 'http://a:1' }, { url: 'http://a:1/', name: 'other' }] }, 'instances[1].url duplicates the url of instances[0]: "http://a:1"'],
    ['loop', { listen: '127.0.0.1:9999', instances: [{ url: 'http://localhost:9999' }] }, "instances[0].url points at corral's own listen address 127.0.0.1:9999; that would loop (is OLLAMA_HOST set to corral?)"],
    ['redis url', { redis: { url: 'http://r' } }, 'redis.url must be a redis:// or rediss:// URL, got "http://r"'],
    ['log level', { log: { level: 'loud' } }, 'log.level must be one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "loud"'],
    ['policy', { balancer: { policy: 'random' } }, 'balancer.policy must be one of "load-score", "least-inflight", "round-robin", got "random"'],
    ['max_queue', { balancer: { max_queue: -1 } }, 'balancer.max_queue must be at least 0, got -1'],
    ['queue_timeout', { balancer: { queue_timeout: 'soon' } }, 'balancer.queue_timeout must be a duration like "30s", "5m" or "250ms", got "soon"'],
    ['bulk_part_size', { balancer: { priority: { bulk_part_size: -1 } } }, 'balancer.priority.bulk_part_size must be at least 0, got -1'],
    ['bulk_part_size whole', { balancer: { priority: { bulk_part_size: 2.5 } } }, 'balancer.priority.bulk_part_size must be a whole number, got 2.5'],
    ['affinity header', { balancer: { affinity: { header: 'X Session' } } }, 'balancer.affinity.header must be an HTTP header name, got "X Session"'],
    ['affinity tolerance', { balancer: { affinity: { tolerance: 0.5 } } }, 'balancer.affinity.tolerance must be at least 1, got 0.5'],
    ['health interval floor', { health: { interval: '100ms' } }, 'health.interval must be at least 1000 ms, got "100ms"'],
    ['unhealthy_after', { health: { unhealthy_after: 0 } }, 'health.unhealthy_after must be at least 1, got 0'],
    ['eject_after', { health: { eject_after: 1.5 } }, 'health.eject_after must be a whole number, got 1.5'],
    ['models_interval', { health: { models_interval: 10 } }, 'health.models_interval must be at least 1000 ms, got 10'],
    ['max_attempts', { proxy: { max_attempts: 0 } }, 'proxy.max_attempts must be at least 1, got 0'],
    ['duration', { proxy: { connect_timeout: '5 years' } }, 'proxy.connect_timeout must be a duration like "30s", "5m" or "250ms", got "5 years"'],
    ['size', { limits: { max_body_size: { embedding: 'huge' } } }, 'limits.max_body_size.embedding must be a size like "32MiB", "64KiB" or a number of bytes, got "huge"'],
    ['max_connections', { server: { max_connections: -1 } }, 'server.max_connections must be at least 0, got -1'],
    ['max_requests_per_client', { server: { max_requests_per_client: 2.5 } }, 'server.max_requests_per_client must be a whole number, got 2.5'],
    ['trust_proxy cidr', { server: { trust_proxy: ['10.0.0.0/33'] } }, 'server.trust_proxy[0] must be an IP address or CIDR like 10.0.0.0/8, got "10.0.0.0/33"'],
    ['trust_proxy type', { server: { trust_proxy: 'yes' } }, 'server.trust_proxy has the wrong type, got string "yes"'],
    ['headers within request timeout', { server: { headers_timeout: '20m', request_timeout: '1m' } }, 'server.headers_timeout must not be longer than server.request_timeout ("1m"), got "20m"'],
    ['section type', { server: 'fast' }, 'server must be a mapping, got string "fast"'],
    ['redis needs a target', { redis: { command_timeout: '50ms' } }, 'redis.url is required (or sentinels with name, or cluster)'],
    ['redis one target', { redis: { url: 'redis://a', cluster: ['redis://b'] } }, 'redis must set only one of url, sentinels, cluster'],
    ['redis sentinels need a name', { redis: { sentinels: ['a:26379'] } }, 'redis.name is required with sentinels'],
    ['redis sentinel address', { redis: { sentinels: ['a'], name: 'm' } }, 'redis.sentinels[0] must be host:port, got "a"'],
    ['redis cluster url', { redis: { cluster: ['a:1'] } }, 'redis.cluster[0] must be a redis:// or rediss:// URL, got "a:1"'],
    ['redis key prefix', { redis: { url: 'redis://a', key_prefix: 'has space' } }, 'redis.key_prefix must be 1-64 letters, digits or : . _ -, got "has space"'],
    ['redis command timeout', { redis: { url: 'redis://a', command_timeout: 'soon' } }, 'redis.command_timeout must be a duration like "30s", "5m" or "250ms", got "soon"'],
    ['cache layer ttl', { cache: { layers: { chunk: { ttl: 'forever' } } } }, 'cache.layers.chunk.ttl must be a duration like "30s", "5m" or "250ms", got "forever"'],
    ['inference policy', { cache: { layers: { inference: { policy: 'sometimes' } } } }, 'cache.layers.inference.policy must be one of "deterministic", "always", "off", got "sometimes"'],
    ['cache memory size', { cache: { memory: { max_size: 'lots' } } }, 'cache.memory.max_size must be a size like "32MiB", "64KiB" or a number of bytes, got "lots"'],
    ['cache switch', { cache: { enabled: 'yes' } }, 'cache.enabled must be true or false, got string "yes"'],
    ['metrics switch', { metrics: { enabled: 'yes' } }, 'metrics.enabled must be true or false, got string "yes"'],
    ['metrics listen', { metrics: { listen: 'nowhere' } }, 'metrics.listen must be host:port (or [ipv6]:port), got "nowhere"'],
    ['metrics listen apart', { listen: '127.0.0.1:9000', metrics: { listen: '127.0.0.1:9000' } }, 'metrics.listen must differ from listen ("127.0.0.1:9000"); /metrics is served there anyway, got "127.0.0.1:9000"'],
  ]
  for (const [name, raw, expected] of cases) t.same(problems(raw), [expected], name)
  t.equal(problems({ listen: 'x', instances: [{ url: 'y' }], log: { level: 'z' } }).length, 3, 'every problem at once')
})

t.test('YAML syntax errors and non-mapping files', async (t) => {
  const broken = yamlFile('listen: [unclosed\n')
  const [syntax] = problemsOf(() => loadConfig({ file: broken, env: {} }))
  t.match(syntax, new RegExp(`^${broken}:\\d+:\\d+: `), "file, line and column first")
  t.match(problemsOf(() => loadConfig({ file: yamlFile('- a\n- b\n'), env: {} })), [/must be a YAML mapping of settings, got a list/])
  t.match(problemsOf(() => loadConfig({ file: join(dir, 'missing.yaml'), env: {} })), [/missing\.yaml: no such file$/])
  t.same(loadConfig({ file: yamlFile(''), env: {} }).config.listen.port, 11435, 'an empty file means defaults')
})

t.test('every file in config/ loads', async (t) => {
  const files = readdirSync('config').filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
  t.ok(files.includes('corral.yaml') && files.includes('corral.example.yaml'))
  for (const f of files) {
    const { config } = loadConfig({ file: join('config', f), env: {} })
    t.ok(config.instances.length > 0, f)
  }
  t.equal(loadConfig({ file: 'config/corral.yaml', env: {} }).config.listen.port, 11435, 'npm start listens on 11435')
})

t.test('the example config names every key the schema knows', async (t) => {
  const example = readFileSync('config/corral.example.yaml', 'utf8')
  const schema = JSON.parse(configJsonSchemaText()) as { properties: Record<string, { properties?: Record<string, unknown>; items?: { properties: Record<string, unknown> } }> }
  for (const [key, sub] of Object.entries(schema.properties)) {
    t.match(example, new RegExp(`^${key}:`, 'm'), key)
    const inner = sub.properties ?? sub.items?.properties ?? {}
    for (const k of Object.keys(inner)) t.match(example, new RegExp(`^\\s+(- )?${k}:`, 'm'), `${key}.${k}`)
  }
})

t.test('config/corral.schema.json is in sync with the zod schema (npm run schema)', async (t) => {
  t.equal(readFileSync('config/corral.schema.json', 'utf8'), configJsonSchemaText())
})

t.test('secrets are masked for printing', async (t) => {
  const { effective } = configFromObject({ redis: { url: 'redis://user:pw@r:6379/0' } })
  t.equal(maskSecrets(effective).redis?.url, 'redis://user:***@r:6379/0')
  t.equal(effective.redis?.url, 'redis://user:pw@r:6379/0', 'the original is untouched')
  const cluster = configFromObject({ redis: { cluster: ['redis://:pw@a:7000'], password: 'pw' } }).effective
  t.same(maskSecrets(cluster).redis?.cluster, ['redis://:***@a:7000'])
  t.equal(maskSecrets(cluster).redis?.password, '***')
})
