/**
 * No Docker engine runs on the CI machines, so the Dockerfile is checked as text: the properties
 * the image promises (multi-stage, production dependencies only, non-root, 11434, /healthz), and
 * every file it copies exists.
 */
import { existsSync, readFileSync } from 'node:fs'
import t from 'tap'

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
  t.match(dockerfile, /CORRAL_LISTEN=0\.0\.0\.0:11434/)
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
