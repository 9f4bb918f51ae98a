/**
 * No Docker engine runs on the CI machines, so the Dockerfile is checked as text: the properties
 * the image promises (multi-stage, production dependencies only, non-root, 11434, /healthz), and
 * every file it copies exists. Its environment is fed to corral's own config loader: the image's
 * defaults never override a mounted config.
 */
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig } from '../src/config/load-config.js'

const dockerfile = readFileSync('Dockerfile', 'utf8')
const lines = dockerfile.split('\n').filter((l) => !l.trim().startsWith('#'))

t.test('multi-stage build, slim runtime with production dependencies only', async (t) => {
  const froms = lines.filter((l) => l.startsWith('FROM '))
  t.equal(froms.length, 2)
  t.match(froms[0], /^FROM node:20[\w.-]* AS build$/)
  t.match(froms[1], /^FROM node:20[\w.-]*slim$/)
  t.match(dockerfile, /npm ci --omit=dev/)
  t.match(dockerfile, /COPY --from=build \/app\/dist \.\/dist/)
})

t.test('non-root, listens on 0.0.0.0:11434, health check on /healthz', async (t) => {
  const user = lines.find((l) => l.startsWith('USER '))
  t.ok(user && !/\broot\b|\b0\b/.test(user), `runs as ${user}`)
  t.match(dockerfile, /EXPOSE 11434/)
  t.match(dockerfile, /HEALTHCHECK[^\n]*\\\n[^\n]*127\.0\.0\.1:11434\/healthz/)
  t.match(dockerfile, /ENTRYPOINT \["node", "bin\/corral\.js"\]/)
})

t.test('every file the build copies from the context exists', async (t) => {
  const sources = lines
    .filter((l) => l.startsWith('COPY ') && !l.includes('--from='))
    .flatMap((l) => l.replace(/^COPY\s+/, '').split(/\s+/).slice(0, -1))
  t.ok(sources.length >= 5)
  for (const source of sources) t.ok(existsSync(source), source)
})

/** The runtime stage's ENV as a map (`ENV A=1 \\ B=2`, continuation lines joined). */
function imageEnv(): Record<string, string> {
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '))
  const joined = runtime
    .split('\n')
    .filter((l) => !l.trim().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ')
  const env: Record<string, string> = {}
  for (const line of joined.split('\n')) {
    if (!line.startsWith('ENV ')) continue
    for (const [, name, value] of line.slice(4).matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)) env[name!] = value!
  }
  return env
}

/** The image's path of a file copied from the context (`COPY config ./config`, WORKDIR /app). */
const inContext = (imagePath: string): string => imagePath.replace(/^\/app\//, '')

t.test("the image's defaults never override a mounted config", async (t) => {
  const env = imageEnv()
  t.equal(env.NODE_ENV, 'production')
  const overrides = Object.keys(env).filter((k) => k.startsWith('CORRAL_') && k !== 'CORRAL_CONFIG')
  t.same(overrides, [], 'no CORRAL_* variable that overrides a config file (CORRAL_LISTEN did)')
  t.ok(env.CORRAL_CONFIG, 'the defaults are a config file')
  // As the README runs it: `docker run -e CORRAL_INSTANCES=...`.
  const run = loadConfig({ env: { ...env, CORRAL_CONFIG: inContext(env.CORRAL_CONFIG!), CORRAL_INSTANCES: 'http://gpu1:11434' } }).config
  t.equal(`${run.listen.host}:${run.listen.port}`, '0.0.0.0:11434', 'the image listens on 0.0.0.0:11434')
  t.same(run.instances.map((i) => i.url), ['http://gpu1:11434'], 'CORRAL_INSTANCES applies')

  const mounted = join(mkdtempSync(join(tmpdir(), 'corral-image-')), 'corral.yaml')
  writeFileSync(mounted, 'listen: 0.0.0.0:8080\ninstances:\n  - url: http://gpu1:11434\n')
  const byFlag = loadConfig({ file: mounted, env: { ...env, CORRAL_CONFIG: inContext(env.CORRAL_CONFIG!) } }).config
  t.equal(byFlag.listen.port, 8080, "a config passed with --config keeps its listen")
  const byEnv = loadConfig({ env: { ...env, CORRAL_CONFIG: mounted } }).config
  t.equal(byEnv.listen.port, 8080, 'a config named by CORRAL_CONFIG keeps its listen')
})
