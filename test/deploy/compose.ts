/**
 * No Docker engine runs here, so docker-compose.yml is checked as data: every file it mounts or
 * builds from exists, the corral config it mounts is valid for corral's own loader, and every
 * service name and port lines up across corral's config, Prometheus' scrape targets and
 * Grafana's provisioning.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { parse } from 'yaml'
import { loadConfig } from '../../src/config/load-config.js'

interface Service {
  build?: string
  image?: string
  command?: string[]
  ports?: string[]
  volumes?: string[]
  environment?: Record<string, string>
  depends_on?: Record<string, { condition: string }>
  stop_grace_period?: string
  healthcheck?: unknown
}

const read = (file: string): unknown => parse(readFileSync(file, 'utf8'), { merge: true })
const compose = read('docker-compose.yml') as { services: Record<string, Service>; volumes: Record<string, unknown> }
const services = compose.services
const names = Object.keys(services)
const corrals = names.filter((n) => services[n]!.build !== undefined)

/** Bind mounts of a service as { source, target }; named volumes have a source without a slash. */
const mounts = (s: Service): { source: string; target: string }[] =>
  (s.volumes ?? []).map((v) => {
    const [source, target] = v.split(':')
    return { source: source!, target: target! }
  })
/** The container port of each `host:container` mapping. */
const containerPorts = (s: Service): number[] => (s.ports ?? []).map((p) => Number(p.split(':').at(-1)))
const hostPort = (address: string): { host: string; port: number } => {
  const url = new URL(address.includes('://') ? address : `tcp://${address}`)
  return { host: url.hostname, port: Number(url.port) }
}
/** The mounted host file behind a path inside a service's container. */
const hostFile = (s: Service, inside: string): string | undefined => {
  for (const { source, target } of mounts(s)) {
    if (inside === target) return source
    if (inside.startsWith(`${target}/`)) return join(source, inside.slice(target.length + 1))
  }
  return undefined
}

t.test('the services of the stack', async (t) => {
  t.same(corrals, ['corral-1', 'corral-2'], 'two corral replicas built from this repository')
  for (const n of ['redis', 'ollama1', 'ollama2', 'prometheus', 'grafana']) t.ok(services[n], n)
  t.equal(services.ollama1!.image, 'ollama/ollama')
  t.equal(services.ollama2!.image, 'ollama/ollama')
  for (const s of Object.values(services)) for (const d of Object.keys(s.depends_on ?? {})) t.ok(services[d], `depends on a service: ${d}`)
  const hostPorts = names.flatMap((n) => (services[n]!.ports ?? []).map((p) => p.split(':')[0]))
  t.equal(new Set(hostPorts).size, hostPorts.length, `no host port published twice: ${hostPorts.join(', ')}`)
})

t.test('every file the stack mounts or builds from exists', async (t) => {
  for (const [name, s] of Object.entries(services)) {
    if (s.build !== undefined) t.ok(existsSync(join(s.build, 'Dockerfile')), `${name}: ${s.build}/Dockerfile`)
    for (const { source } of mounts(s)) {
      if (source.startsWith('.')) t.ok(existsSync(source), `${name}: ${source}`)
      else t.ok(source in compose.volumes, `${name}: named volume ${source} declared`)
    }
  }
})

t.test('corral: its mounted config is valid and points at the stack', async (t) => {
  for (const name of corrals) {
    const s = services[name]!
    const configPath = s.command![s.command!.indexOf('--config') + 1]!
    const file = hostFile(s, configPath)
    t.ok(file !== undefined && existsSync(file), `${name}: --config ${configPath} is mounted from ${file}`)
    const { config } = loadConfig({ file: file!, env: {} })
    t.same(containerPorts(s), [config.listen.port], `${name}: publishes the port corral listens on`)
    t.equal(config.listen.host, '0.0.0.0', 'listens on every address of the container')
    for (const instance of config.instances) {
      const { host, port } = hostPort(instance.url)
      t.equal(services[host]?.image, 'ollama/ollama', `instance ${instance.url} is an ollama service`)
      // The ollama image listens on 11434 unless OLLAMA_HOST says otherwise.
      const ollamaPort = services[host]?.environment?.OLLAMA_HOST ? hostPort(services[host].environment.OLLAMA_HOST).port : 11434
      t.equal(port, ollamaPort, `instance ${instance.url}: the port ollama listens on`)
    }
    const redis = hostPort(config.redis!.url!)
    t.ok(services[redis.host]?.image?.startsWith('redis'), `redis ${config.redis!.url} is the redis service`)
    t.equal(redis.port, 6379)
    const graceMs = Number(/^(\d+)s$/.exec(s.stop_grace_period!)![1]) * 1000
    t.ok(graceMs > config.server.drainTimeoutMs, `${name}: stop_grace_period ${s.stop_grace_period} exceeds drain_timeout`)
  }
})

t.test('prometheus scrapes both corral replicas at /metrics', async (t) => {
  const s = services.prometheus!
  const file = hostFile(s, '/etc/prometheus/prometheus.yml')!
  const prom = read(file) as { global: { scrape_interval: string }; scrape_configs: { job_name: string; metrics_path?: string; honor_labels?: boolean; static_configs: { targets: string[] }[] }[] }
  const job = prom.scrape_configs.find((j) => j.job_name === 'corral')!
  t.ok(job, 'a corral job')
  t.equal(job.metrics_path ?? '/metrics', '/metrics')
  t.not(job.honor_labels, true, 'honor_labels false: the dashboards read exported_instance')
  const targets = job.static_configs.flatMap((c) => c.targets)
  t.same(targets.map((x) => hostPort(x).host).sort(), [...corrals].sort(), 'one target per corral replica')
  for (const target of targets) {
    const { host, port } = hostPort(target)
    const { config } = loadConfig({ file: hostFile(services[host]!, '/etc/corral/corral.yaml')!, env: {} })
    t.equal(port, config.metrics.listen?.port ?? config.listen.port, `${target}: the port corral serves /metrics on`)
  }
  t.same(containerPorts(s), [9090])
  const datasources = read('dashboards/provisioning/datasources/prometheus.yaml') as { datasources: { url: string; jsonData: { timeInterval: string } }[] }
  t.equal(datasources.datasources[0]!.jsonData.timeInterval, prom.global.scrape_interval, "the datasource's timeInterval is the scrape interval")
})

t.test('grafana is provisioned with the datasource and the three dashboards', async (t) => {
  const s = services.grafana!
  t.same(containerPorts(s), [3000])
  const provisioning = hostFile(s, '/etc/grafana/provisioning')
  t.equal(provisioning, './dashboards/provisioning')
  const datasources = read(join(provisioning!, 'datasources/prometheus.yaml')) as { datasources: { url: string }[] }
  const { host, port } = hostPort(datasources.datasources[0]!.url)
  t.equal(host, 'prometheus', 'the datasource is the prometheus service')
  t.ok(containerPorts(services[host]!).includes(port), `at the port prometheus listens on (${port})`)
  const providers = read(join(provisioning!, 'dashboards/corral.yaml')) as { providers: { options: { path: string } }[] }
  const dashboardDir = hostFile(s, providers.providers[0]!.options.path)
  t.equal(dashboardDir, './dashboards', "the provider's path is where dashboards/ is mounted")
  for (const d of ['corral-performance.json', 'corral-health.json', 'corral-business.json']) t.ok(existsSync(join(dashboardDir!, d)), d)
  t.equal(hostFile(s, s.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH!), 'dashboards/corral-performance.json', 'the home dashboard exists')
})

t.test('starts in order beside a Redis and an Ollama already running on the machine', async (t) => {
  const published = names.flatMap((n) => (services[n]!.ports ?? []).map((p) => Number(p.split(':')[0])))
  t.notOk(published.includes(6379), "no host port of Redis' own")
  t.notOk(published.includes(11434), "no host port of Ollama's own")
  t.same(services.redis!.ports ?? [], [], 'Redis is reached on the compose network only')
  t.ok(services.redis!.healthcheck, 'Redis has a health check')
  for (const name of corrals) {
    const deps = services[name]!.depends_on
    t.ok(deps !== undefined && !Array.isArray(deps), `${name}: depends_on in the long form (conditions)`)
    t.equal(deps!.redis?.condition, 'service_healthy', `${name}: starts once Redis answers`)
    t.equal(deps!.ollama1?.condition, 'service_started')
    t.equal(deps!.ollama2?.condition, 'service_started')
  }
  // The image's own HEALTHCHECK is what service_healthy waits for on a corral.
  t.match(readFileSync('Dockerfile', 'utf8'), /HEALTHCHECK/)
  for (const c of corrals) t.equal(services.prometheus!.depends_on![c]?.condition, 'service_healthy', `prometheus waits for ${c}`)
  for (const [name, s] of Object.entries(services)) {
    for (const [dep, { condition }] of Object.entries(s.depends_on ?? {})) {
      if (condition === 'service_healthy') t.ok(services[dep]!.healthcheck !== undefined || services[dep]!.build !== undefined, `${name}: ${dep} has a health check to wait for`)
    }
  }
})
