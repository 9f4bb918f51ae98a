/**
 * deploy/kubernetes/ checked as data (no cluster here): each manifest has the apiVersion, kind
 * and fields the API server requires, the labels and selectors of the Deployment, Service,
 * PodDisruptionBudget, ServiceMonitor and HorizontalPodAutoscaler line up, the probes hit
 * /readyz and /healthz on the container's port, and the embedded corral.yaml is valid for
 * corral's own loader with a grace period longer than its drain.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parseAllDocuments, parse } from 'yaml'
import { loadConfig } from '../../src/config/load-config.js'

/** The fields of the manifests this test reads (a cluster requires more than these types say). */
type Labels = Record<string, string>
interface Meta {
  name: string
  labels?: Labels
}
interface Manifest {
  apiVersion: string
  kind: string
  metadata: Meta
}
interface Probe {
  httpGet: { path: string; port: string | number }
}
interface ContainerPort {
  name: string
  containerPort: number
}
interface Container {
  name: string
  image: string
  args: string[]
  ports: ContainerPort[]
  env: { name: string }[]
  readinessProbe: Probe
  livenessProbe: Probe
  lifecycle: { preStop: { exec: { command: string[] } } }
  resources: Record<'requests' | 'limits', Record<'cpu' | 'memory', string | undefined>>
  securityContext: { allowPrivilegeEscalation: boolean }
  volumeMounts: { name: string; mountPath: string }[]
}
interface Deployment extends Manifest {
  spec: {
    replicas: number
    selector: { matchLabels: Labels }
    strategy: { rollingUpdate: { maxUnavailable: number | string } }
    template: {
      metadata: { labels: Labels }
      spec: {
        terminationGracePeriodSeconds: number
        securityContext: { runAsNonRoot: boolean }
        containers: Container[]
        volumes: { name: string; configMap: { name: string; items: { key: string; path: string }[] } }[]
      }
    }
  }
}
interface Service extends Manifest {
  metadata: Meta & { labels: Labels }
  spec: { selector: Labels; ports: { name: string; port: number; targetPort: string | number }[] }
}
interface ConfigMap extends Manifest {
  data: Record<string, string | undefined>
}
interface PodDisruptionBudget extends Manifest {
  spec: { minAvailable: number; selector: { matchLabels: Labels } }
}
interface ServiceMonitor extends Manifest {
  spec: { selector: { matchLabels: Labels }; endpoints: { port: string; path: string; honorLabels?: boolean }[] }
}
interface HorizontalPodAutoscaler extends Manifest {
  spec: { scaleTargetRef: { apiVersion: string; kind: string; name: string }; minReplicas: number; maxReplicas: number; metrics: unknown[] }
}

const DIR = 'deploy/kubernetes'
const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml'))
const manifests: Manifest[] = files
  .filter((f) => f !== 'kustomization.yaml')
  .flatMap((f) => parseAllDocuments(readFileSync(join(DIR, f), 'utf8')).map((d) => d.toJS() as Manifest))
const one = <M extends Manifest>(kind: string): M => {
  const found = manifests.filter((m) => m.kind === kind)
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`)
  return found[0] as M
}
/** Whether every label of `selector` is on `labels`. */
const selects = (selector: Labels, labels: Labels | undefined): boolean =>
  Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v)

const deployment = one<Deployment>('Deployment')
const pod = deployment.spec.template
const container = pod.spec.containers[0]!
const service = one<Service>('Service')
const configMap = one<ConfigMap>('ConfigMap')

t.test('every manifest: the apiVersion its kind is served at, a name, nothing unknown', async (t) => {
  const versions: Record<string, string> = {
    ConfigMap: 'v1',
    Deployment: 'apps/v1',
    Service: 'v1',
    HorizontalPodAutoscaler: 'autoscaling/v2',
    PodDisruptionBudget: 'policy/v1',
    ServiceMonitor: 'monitoring.coreos.com/v1',
  }
  t.same(manifests.map((m) => m.kind).sort(), Object.keys(versions).sort(), 'one of each')
  for (const m of manifests) {
    t.equal(m.apiVersion, versions[m.kind], `${m.kind}: ${m.apiVersion}`)
    t.match(m.metadata?.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, `${m.kind}: a DNS-1123 name`)
    t.equal(m.metadata.labels?.['app.kubernetes.io/name'], 'corral', `${m.kind}: labelled`)
  }
  const kustomization = parse(readFileSync(join(DIR, 'kustomization.yaml'), 'utf8')) as { kind: string; resources: string[] }
  t.equal(kustomization.kind, 'Kustomization')
  t.same([...kustomization.resources].sort(), files.filter((f) => f !== 'kustomization.yaml').sort(), 'kustomization lists every manifest')
})

t.test('Deployment: selector, probes, resources, security, config volume', async (t) => {
  t.ok(selects(deployment.spec.selector.matchLabels, pod.metadata.labels), 'the selector matches the pod labels')
  t.ok(deployment.spec.replicas >= 2, 'at least two replicas')
  t.equal(deployment.spec.strategy.rollingUpdate.maxUnavailable, 0, 'a rollout never drops below the replica count')
  t.ok(container.name && container.image, 'container name and image')
  const port = container.ports.find((p) => p.name === 'http')
  t.equal(port?.containerPort, 11434)
  const probePort = (probe: Probe): number | undefined => (typeof probe.httpGet.port === 'string' ? container.ports.find((p) => p.name === probe.httpGet.port)?.containerPort : probe.httpGet.port)
  t.equal(container.readinessProbe.httpGet.path, '/readyz')
  t.equal(probePort(container.readinessProbe), 11434, 'readiness on the container port')
  t.equal(container.livenessProbe.httpGet.path, '/healthz')
  t.equal(probePort(container.livenessProbe), 11434, 'liveness on the container port')
  for (const kind of ['requests', 'limits'] as const) for (const r of ['cpu', 'memory'] as const) t.ok(container.resources[kind][r], `resources.${kind}.${r}`)
  t.equal(pod.spec.securityContext.runAsNonRoot, true, 'non-root')
  t.equal(container.securityContext.allowPrivilegeEscalation, false)

  // The config: the ConfigMap key is mounted at the path given to --config.
  const configPath = container.args[container.args.indexOf('--config') + 1]!
  const mount = container.volumeMounts.find((m) => configPath.startsWith(`${m.mountPath}/`))!
  t.ok(mount, `${configPath} is on a mounted volume`)
  const volume = pod.spec.volumes.find((v) => v.name === mount.name)!
  t.equal(volume.configMap.name, configMap.metadata.name, 'mounted from the ConfigMap')
  const item = volume.configMap.items.find((i) => `${mount.mountPath}/${i.path}` === configPath)
  t.ok(item && typeof configMap.data[item.key] === 'string', `the ConfigMap has ${item?.key}`)
})

t.test("the ConfigMap's corral.yaml is valid, and termination outlasts the drain", async (t) => {
  // Every ${VAR} the config uses comes from the container's environment.
  const text = configMap.data['corral.yaml']!
  const used = [...text.matchAll(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g)].map((m) => m[1]!)
  const env = Object.fromEntries(container.env.map((e) => [e.name, 'from-the-secret']))
  for (const name of used) t.ok(name in env, `\${${name}} is set in the container`)
  const dir = mkdtempSync(join(tmpdir(), 'corral-k8s-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'corral.yaml'), text)
  const { config } = loadConfig({ file: join(dir, 'corral.yaml'), env })
  t.equal(config.listen.host, '0.0.0.0')
  t.equal(config.listen.port, container.ports[0]!.containerPort, 'corral listens on the container port')
  t.ok(config.redis?.cluster && config.redis.cluster.length > 0, 'a Redis Cluster: the cache is shared by every replica')

  const preStopSeconds = Number(container.lifecycle.preStop.exec.command.at(-1))
  const drainSeconds = config.server.drainTimeoutMs / 1000
  t.ok(pod.spec.terminationGracePeriodSeconds > preStopSeconds + drainSeconds,
    `terminationGracePeriodSeconds ${pod.spec.terminationGracePeriodSeconds} > preStop ${preStopSeconds}s + drain_timeout ${drainSeconds}s`)
})

t.test('Service, PodDisruptionBudget, ServiceMonitor and HPA select the Deployment', async (t) => {
  const podLabels = pod.metadata.labels
  t.ok(selects(service.spec.selector, podLabels), 'Service selects the pods')
  const servicePort = service.spec.ports[0]!
  t.ok(container.ports.some((p) => p.name === servicePort.targetPort || p.containerPort === servicePort.targetPort), 'Service targets the container port')
  t.equal(servicePort.port, 11434, 'clients keep Ollama\'s port')

  const pdb = one<PodDisruptionBudget>('PodDisruptionBudget')
  t.ok(selects(pdb.spec.selector.matchLabels, podLabels), 'PDB selects the pods')
  const hpa = one<HorizontalPodAutoscaler>('HorizontalPodAutoscaler')
  t.ok(pdb.spec.minAvailable < hpa.spec.minReplicas, 'a PDB that still lets a node drain')

  const monitor = one<ServiceMonitor>('ServiceMonitor')
  t.ok(selects(monitor.spec.selector.matchLabels, service.metadata.labels), 'ServiceMonitor selects the Service')
  t.equal(monitor.spec.endpoints[0]!.port, servicePort.name, 'scrapes the named Service port')
  t.equal(monitor.spec.endpoints[0]!.path, '/metrics')
  t.not(monitor.spec.endpoints[0]!.honorLabels, true, 'honorLabels false: the dashboards read exported_instance')

  t.same(hpa.spec.scaleTargetRef, { apiVersion: deployment.apiVersion, kind: 'Deployment', name: deployment.metadata.name }, 'HPA scales the Deployment')
  t.ok(hpa.spec.maxReplicas >= hpa.spec.minReplicas && hpa.spec.minReplicas >= 2)
  t.ok(hpa.spec.metrics.length > 0)
  t.ok(container.resources.requests.cpu, 'CPU utilisation needs a CPU request')
})
